"""Mock observations (lib/mocks): the physics and geometry, each checked against a number known in advance."""
import numpy as np
import pytest
from scipy import stats

from lib import mocks
from lib.mocks import dust, recipes, redshift
from lib.mocks.example import disc
from lib.mocks.light import SSPTable, load_ssp, ssp_magnitudes
from lib.mocks.projection import Grid, project, smoothing_lengths


def flat_ssp(mag: float = 0.0) -> SSPTable:
    """An SSP table with the same magnitude everywhere: L = massform * 10^(-0.4 mag) in every band."""
    mets, ages = np.array([1e-4, 0.04]), np.array([1e6, 1e11])
    return SSPTable(mets=mets, log_ages=np.log10(ages), mags={b: np.full((2, 2), mag) for b in "gri"}, path="flat")


def disc_particles(n, scale, height, rng, name="disc"):
    pos, vel = disc(n, 1e10, scale, height, 200.0, rng, sigma=5.0)
    arrays = {"pos": pos, "vel": vel, "mass": np.full(n, 1e10 / n), "age": np.full(n, 5.0), "metals": np.full(n, 0.02)}
    return mocks.validate(arrays, name, name)


def kernel_variance_factor():
    """Per-axis variance of the M4 kernel (support 2h) in units of h^2: (4 pi / 3) int W q^4 dq."""
    q = np.linspace(0, 2, 20001)
    w = np.where(q < 1, 1 - 1.5 * q**2 + 0.75 * q**3, 0.25 * (2 - q) ** 3) / np.pi
    kv = 4 * np.pi / 3 * np.trapezoid(w * q**4, q)
    assert kv == pytest.approx(mocks.projection.KERNEL_VARIANCE, rel=1e-3)
    return kv


def test_faceon_exponential_disc_gives_the_analytic_profile_and_conserves_flux():
    rng = np.random.default_rng(1)
    n, rd, r_cut = 200_000, 3.0, 18.0
    p = disc_particles(n, rd, 0.1, rng)
    keep = np.hypot(p["pos"][:, 0], p["pos"][:, 1]) < r_cut  # the galaxy lies wholly in the 50 kpc field
    p = mocks.validate({k: v[keep] for k, v in p.arrays.items()}, "disc", "disc")
    prep = recipes.prepare(p, flat_ssp(), with_dust=False)
    xyz = prep.star_xyz
    assert (np.abs(xyz[:, :2]).max(1) + 2 * prep.star_h).max() < 25
    view = recipes.paper_view(prep, 0.0, 0.0)
    sb = view.maps["r"]  # 10^(-0.4 M) per pc^2, 500 x 500 pixels of 0.1 kpc
    # flux: map x 1e4 pc^2 per pixel = summed L of the particles (L = massform with the flat table)
    ltot = prep.light.lum["r"].sum()
    assert sb.sum() * 1e4 == pytest.approx(ltot, rel=1e-3)
    assert ltot == pytest.approx(p["massform"].sum())
    # profile: azimuthal means in annuli beyond 2 smoothing lengths against L/(2 pi rd^2) exp(-R/rd)
    l_untruncated = ltot / (1 - np.exp(-r_cut / rd) * (1 + r_cut / rd))
    c = (np.arange(500) + 0.5) * 0.1 - 25
    rr = np.hypot(*np.meshgrid(c, c))
    r_star = np.hypot(xyz[:, 0], xyz[:, 1])
    edges = np.arange(2.0, 4 * rd + 0.01, 0.5)
    for lo_r, hi_r in zip(edges[:-1], edges[1:]):
        ring = (rr >= lo_r) & (rr < hi_r)
        assert lo_r > 2 * np.median(prep.star_h[(r_star >= lo_r) & (r_star < hi_r)])
        mid = 0.5 * (lo_r + hi_r)
        # ring mean of exp(-R/rd) over a 0.5 kpc annulus ~ exp(-mid/rd) sinh(a)/a, a = 0.25/rd
        model = l_untruncated / (2 * np.pi * rd**2) * np.exp(-mid / rd) * np.sinh(0.25 / rd) / (0.25 / rd) / 1e6
        assert sb[ring].mean() == pytest.approx(model, rel=0.05), (mid, sb[ring].mean() / model)


def test_thin_disc_edge_on_has_the_expected_axis_ratio():
    rng = np.random.default_rng(2)
    prep = recipes.prepare(disc_particles(50_000, 3.0, 0.15, rng), flat_ssp(), with_dust=False)
    c = (np.arange(500) + 0.5) * 0.1 - 25
    yy, xx = np.meshgrid(c, c, indexing="ij")
    kv = kernel_variance_factor()
    for theta, q_lo, q_hi in ((90.0, 0.0, 0.2), (0.0, 0.9, 1.1)):
        m = recipes.paper_view(prep, theta, 0.0).maps["g"]
        ixx, iyy = (m * xx**2).sum() / m.sum(), (m * yy**2).sum() / m.sum()
        q_map = np.sqrt(iyy / ixx)
        xyz = prep.star_xyz @ mocks.view_matrix(theta, 0.0).T
        keep = np.abs(xyz[:, :2]).max(1) < 25 - 2 * prep.star_h
        w, h2 = prep.light.lum["g"][keep], kv * prep.star_h[keep] ** 2
        q_part = np.sqrt(np.average(xyz[keep, 1] ** 2 + h2, weights=w) / np.average(xyz[keep, 0] ** 2 + h2, weights=w))
        assert q_lo < q_map < q_hi
        assert q_map == pytest.approx(q_part, rel=0.05), (q_map, q_part)
        print(theta, q_map, q_part)
    # edge-on (90, 0) puts the disc along the image x axis: sech^2 disc of scale height 0.15 kpc
    # (<z^2> = pi^2 h^2 / 12), exponential of 3 kpc (<x^2> = 3 rd^2)
    assert np.sqrt(np.pi**2 * 0.15**2 / 12 / 27) < 0.1


def test_random_orientations_are_isotropic_and_reproducible():
    d = np.array(mocks.directions("random:4000", np.random.default_rng(7)))
    cos_t = np.cos(np.radians(d[:, 0]))
    assert abs(np.abs(cos_t).mean() - 0.5) < 0.015 and abs(cos_t.mean()) < 0.03
    for col in (1, 2):  # PHI and PA uniform in [0, 360)
        assert abs(d[:, col].mean() - 180) < 6 and 0 <= d[:, col].min() and d[:, col].max() < 360
        assert stats.kstest(d[:, col] / 360, "uniform").pvalue > 0.01
    assert mocks.directions("random:20", np.random.default_rng(3)) == mocks.directions("random:20", np.random.default_rng(3))
    assert mocks.directions("random:20", np.random.default_rng(3)) != mocks.directions("random:20", np.random.default_rng(4))
    # the spin axis seen at (theta, phi, pa) has line-of-sight component cos(theta), whatever PA
    for theta, phi, pa in d[:5]:
        assert (mocks.view_matrix(theta, phi, pa) @ [0, 0, 1])[2] == pytest.approx(np.cos(np.radians(theta)))
    # PA = 0 is exactly the two-angle matrix: face-on images of the paper recipe do not change
    assert np.array_equal(mocks.view_matrix(33.0, 12.0, 0.0), mocks.view_matrix(33.0, 12.0))
    assert mocks.directions("faceon", None) == [(0.0, 0.0, 0.0)] and mocks.directions("edgeon", None) == [(90.0, 0.0, 0.0)]
    assert mocks.directions("30,45", None) == [(30.0, 45.0, 0.0)]
    assert mocks.directions("30,45,120", None) == [(30.0, 45.0, 120.0)]
    for bad in ("random:0", "sideways", "200,0", "1,2,3,4", "1", "30,0,nan"):
        with pytest.raises(mocks.OrientationError):
            mocks.parse_orientations(bad)


def major_axis_pa(m):
    """Position angle (deg, [0, 180), counter-clockwise from +x) of a map's major axis, from its second moments.

    ``m`` has row 0 at -y (the maps' convention), so rows are y and columns x as plotted.
    """
    n = m.shape[0]
    c = np.arange(n) + 0.5 - n / 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    m = np.where(xx**2 + yy**2 < (n / 2) ** 2, m, 0.0)  # a round aperture: the square field has axes of its own
    t = m.sum()
    ixx, iyy, ixy = (m * xx**2).sum() / t, (m * yy**2).sum() / t, (m * xx * yy).sum() / t
    return np.degrees(0.5 * np.arctan2(2 * ixy, ixx - iyy)) % 180


def test_random_views_have_uniform_position_angles_and_pa_rotates_the_image():
    """A thin disc seen from random:N: the measured major-axis PA of its images is uniform (KS), and a given
    PA turns the image by that angle (the issue: every disc horizontal, within -6.9..+4.3 degrees)."""
    rng = np.random.default_rng(11)
    prep = recipes.prepare(disc_particles(4000, 2.0, 0.05, rng), flat_ssp(), with_dust=False)
    views = mocks.directions("random:120", np.random.default_rng(5))
    measured, drawn = [], []
    for theta, phi, pa in views:
        if abs(np.cos(np.radians(theta))) > 0.8:  # near face-on: no major axis to measure
            continue
        maps, *_ = recipes.sdss_maps(prep, theta, phi, 0.03, pa)
        measured.append(major_axis_pa(maps["r"]))
        drawn.append(pa % 180)
    measured, drawn = np.array(measured), np.array(drawn)
    assert len(measured) > 60
    assert stats.kstest(measured / 180, "uniform").pvalue > 0.05
    # and each is the drawn PA (the line of nodes is the major axis of an inclined thin disc)
    diff = (measured - drawn + 90) % 180 - 90
    assert np.median(np.abs(diff)) < 3.0, np.median(np.abs(diff))
    # the old behaviour (PA = 0 for every view) fails the same KS test
    old = [major_axis_pa(recipes.sdss_maps(prep, t, f, 0.03)[0]["r"]) for t, f, _ in views[:40]
           if abs(np.cos(np.radians(t))) <= 0.8]
    assert stats.kstest(np.array(old) / 180, "uniform").pvalue < 1e-6
    # a given PA rotates the image by that angle: 90 degrees is an exact quarter turn of the pixel grid
    base = recipes.sdss_maps(prep, 60.0, 20.0, 0.03)[0]["g"]
    quarter = recipes.sdss_maps(prep, 60.0, 20.0, 0.03, 90.0)[0]["g"]
    # (to 1% of the peak: a stencil's pixel window is not mirror-symmetric about its particle)
    assert np.abs(quarter - np.rot90(base, k=-1)).max() < 0.01 * base.max()
    assert np.abs(quarter - np.rot90(base, k=1)).max() > 0.1 * base.max()  # clockwise would be wrong
    assert quarter.sum() == pytest.approx(base.sum(), rel=1e-4)  # footprints at the canvas edge
    for pa in (30.0, 75.0, 140.0):
        turned = major_axis_pa(recipes.sdss_maps(prep, 60.0, 20.0, 0.03, pa)[0]["g"])
        assert (turned - major_axis_pa(base) - pa + 90) % 180 - 90 == pytest.approx(0.0, abs=1.0)


def test_faceon_axis_comes_from_the_inner_stars_unless_gas_is_asked_for():
    """A gas disc tilted by 60 degrees against the stellar disc: face-on follows the stars (the issue: 60
    degrees off); spin='gas' keeps pynbody's rule, which the paper's engine used."""
    rng = np.random.default_rng(12)
    arrays = mocks.make_galaxy(10.6, 0.2, 3.0, 0.12, n_star=8000, rng=rng, n_gas=2000)
    tilt = mocks.view_matrix(60.0, 0.0)
    arrays["gas_pos"], arrays["gas_vel"] = arrays["gas_pos"] @ tilt.T, arrays["gas_vel"] @ tilt.T
    args = (arrays["pos"], arrays["vel"], arrays["mass"], arrays["gas_pos"], arrays["gas_vel"], arrays["gas_mass"])
    stars = mocks.find_frame(*args)
    assert stars.rotation[2] @ [0, 0, 1] == pytest.approx(1.0, abs=2e-3)
    gas = mocks.find_frame(*args, spin="gas")
    assert np.degrees(np.arccos(gas.rotation[2] @ [0, 0, 1])) == pytest.approx(60.0, abs=1.0)
    with pytest.raises(mocks.OrientationError):
        mocks.find_frame(*args, spin="dark matter")


def test_faceon_frame_follows_pynbody_conventions():
    rng = np.random.default_rng(3)
    p = mocks.validate(mocks.make_galaxy(10.6, 0.2, 3.0, 0.0, n_star=20000, rng=rng), "mw", "mw")
    tilt = mocks.view_matrix(40.0, 0.0).T  # tip the disc: spin no longer along z
    arrays = dict(p.arrays, pos=p["pos"] @ tilt.T + [100.0, -50.0, 7.0], vel=p["vel"] @ tilt.T + [30.0, 0, 0])
    frame = mocks.find_frame(arrays["pos"], arrays["vel"], arrays["mass"])
    assert np.allclose(frame.centre, [100.0, -50.0, 7.0], atol=0.1)
    assert np.allclose(frame.velocity, [30.0, 0, 0], atol=10.0)
    spin = tilt @ [0, 0, 1]
    assert frame.rotation[2] @ spin == pytest.approx(1.0, abs=1e-3)
    # pynbody: new x = (y_old x L) normalised, new y = L x x
    x = np.cross([0, 1, 0], frame.rotation[2])
    assert np.allclose(frame.rotation[0], x / np.linalg.norm(x)) and np.allclose(frame.rotation[1], np.cross(frame.rotation[2], frame.rotation[0]))


def test_ssp_interpolation_is_exact_at_nodes_and_counts_clipping():
    t = load_ssp()
    zi, ai = np.meshgrid(np.arange(t.mets.size), np.arange(t.log_ages.size), indexing="ij")
    mags, n_age, n_z = ssp_magnitudes(t, 10 ** t.log_ages[ai.ravel()] / 1e9, t.mets[zi.ravel()])
    for b in "gri":
        np.testing.assert_allclose(mags[b], t.mags[b].ravel(), rtol=0, atol=1e-9)
    assert n_age == 0 and n_z == 0
    # linear in log age and in linear Z between nodes
    mid_age = 10 ** (0.5 * (t.log_ages[10] + t.log_ages[11])) / 1e9
    m, _, _ = ssp_magnitudes(t, [mid_age], [0.5 * (t.mets[3] + t.mets[4])])
    assert m["r"][0] == pytest.approx(t.mags["r"][3:5, 10:12].mean(), abs=1e-9)
    ages = np.array([0.0, 1e-4, 5.0, 200.0, 5.0])
    mets = np.array([0.02, 0.02, 1e-7, 0.02, 0.1])
    m, n_age, n_z = ssp_magnitudes(t, ages, mets)
    assert (n_age, n_z) == (3, 2)
    assert m["g"][0] == m["g"][1] == pytest.approx(t.mags["g"][9, 0])  # younger than 1 Myr -> 1 Myr, Z = 0.02 node
    assert m["g"][3] == pytest.approx(t.mags["g"][9, -1])
    light = mocks.star_light(t, np.array([2.0, 2.0]), np.array([5.0, 5.0]), np.array([0.02, 0.02]))
    single = mocks.star_light(t, np.array([1.0]), np.array([5.0]), np.array([0.02]))
    assert light.lum["r"][0] == pytest.approx(2 * single.lum["r"][0])  # L scales with the formation mass


def test_redshift_distance_law_and_surface_brightness_dimming():
    assert redshift.nmgy_per_unit_luminosity(200.0) == pytest.approx(redshift.nmgy_per_unit_luminosity(100.0) / 4, rel=1e-12)
    assert redshift.nmgy_per_unit_luminosity(1e-5) == pytest.approx(10 ** (0.4 * 22.5), rel=1e-9)  # 10 pc: m = M
    rng = np.random.default_rng(4)
    prep = recipes.prepare(disc_particles(20_000, 1.0, 0.1, rng), flat_ssp(), with_dust=False)
    out = {}
    for z in (0.05, 0.1):
        maps, n_field, _, kpc_px = recipes.sdss_maps(prep, 30.0, 0.0, z)
        d_a, d_l = redshift.distances_mpc(z)
        assert n_field == 20_000 and kpc_px == pytest.approx(d_a * 1e3 * 0.396127 / 206264.806, rel=1e-6)
        total = maps["r"].sum()
        assert total == pytest.approx(prep.light.lum["r"].sum() * redshift.nmgy_per_unit_luminosity(d_l), rel=1e-3)
        out[z] = (total, d_a, d_l, kpc_px)
    (f1, _, l1, p1), (f2, _, l2, p2) = out[0.05], out[0.1]
    assert f2 / f1 == pytest.approx((l1 / l2) ** 2, rel=1e-3)  # distance law
    # surface brightness: flux over the solid angle of the same physical area, which scales as 1/kpc_px^2
    sb1, sb2 = f1 * p1**2, f2 * p2**2
    assert sb2 / sb1 == pytest.approx((1.05 / 1.1) ** 4, rel=1e-3)  # (1+z)^-4 in every band
    faint, bright = [[redshift.sample_redshift(m, np.random.default_rng([s, 1])) for s in range(200)] for m in (-20, -22.5)]
    assert 0.02 <= min(faint) and max(bright) <= 0.25 and np.median(faint) < np.median(bright)
    assert redshift.sample_redshift(-21, np.random.default_rng(5)) == redshift.sample_redshift(-21, np.random.default_rng(5))


def test_dust_screen_follows_the_papers_formula():
    assert [dust.band_ratio(b) for b in "gri"] == pytest.approx([1.2207, 0.8393, 0.5966], abs=1e-4)
    w = dust.column_weights(np.ones(3), np.array([1e5, 1e3, 3e4]))
    assert list(w) == [1.0, 0.25, 0.0]  # warm, cool x0.25, exactly 3e4 K counts in neither
    # a uniform warm sheet of 1e7 Msun/kpc^2 (lattice of particles): A_V = 0.5 N_H 2e-21
    g = np.arange(-30, 30.01, 0.25)
    x, y = [a.ravel() for a in np.meshgrid(g, g)]
    mass = np.full(x.size, 1e7 * 0.25**2)
    xyz = np.column_stack([x, y, np.zeros_like(x)])
    av = dust.av_map(xyz, np.full(x.size, 0.3), dust.column_weights(mass, np.full(x.size, 1e5)), Grid(100, 20.0))
    n_h = 1e7 * dust.MSUN_KG / dust.KPC_CM**2 / dust.M_H_KG
    np.testing.assert_allclose(av, 0.5 * n_h * 2e-21, rtol=0.02)
    out = dust.attenuate({"g": np.ones((2, 2))}, np.full((2, 2), 1.0))
    assert out["g"][0, 0] == pytest.approx(10 ** (-0.4 * 1.2207), rel=1e-4)


def test_projection_conserves_flux_for_every_footprint_size():
    rng = np.random.default_rng(6)
    n = 3000
    x, y = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)
    h = 10 ** rng.uniform(-3, 0.5, n)  # from far below a pixel to tens of pixels (all levels)
    lum = rng.uniform(0.5, 1.5, (2, n))
    grid = Grid(200, 20.0)
    maps = project(x, y, h, lum, grid)
    inside = np.abs(np.c_[x, y]).max(1) + 2 * h < 10
    assert inside.all()
    # exact up to the coarse grids' bilinear spill of giant particles across the field edge (~1e-6 each)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), lum.sum(1), rtol=1e-7)
    one = project(np.array([0.05]), np.array([0.05]), np.array([1.0]), np.array([1.0]), grid)
    assert one.sum() == pytest.approx(1.0) and one[100, 100] == one.max()  # centred on its pixel
    assert smoothing_lengths(np.zeros((1, 3)))[0] == 0.0

"""Tests of the SDSS imaging model (lib/galaxies/imaging.py): flux, PSF, noise, colour recipe, JPEG."""

import io
import math
import os

import galsim
import numpy as np
import pytest
from astropy.modeling import fitting, models
from PIL import Image

from lib.galaxies import imaging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIX = imaging.SDSS_PIXEL_SCALE


def gaussian_map(scale, size, sigma_arcsec, flux, centre=(0.0, 0.0)):
    """A pixel-integrated Gaussian source (nMgy per pixel), drawn with GalSim."""
    prof = galsim.Gaussian(sigma=sigma_arcsec, flux=flux).shift(*centre)
    return prof.drawImage(nx=size, ny=size, scale=scale).array.astype(float)


def fit_fwhm(img, scale):
    """FWHM (arcsec) of a Moffat(beta=3) fitted to a noiseless point-source image."""
    ny, nx = img.shape
    y, x = np.mgrid[0:ny, 0:nx]
    m0 = models.Moffat2D(amplitude=img.max(), x_0=(nx - 1) / 2, y_0=(ny - 1) / 2, gamma=3.0, alpha=3.0)
    m0.alpha.fixed = True
    fit = fitting.LevMarLSQFitter()(m0, x, y, img)
    return fit.fwhm * scale


# ------------------------------------------------------------------ flux conservation
@pytest.mark.parametrize("scale", [0.05, 0.2, 0.396127, 0.9])
def test_resample_conserves_flux(scale):
    size = int(round(20 / scale))  # a 20 arcsec map, inside the 25 arcsec cutout
    src = gaussian_map(scale, size, 1.5, 123.0)
    out = imaging.resample(src, scale, size=64)
    assert out.shape == (64, 64)
    assert out.sum() == pytest.approx(src.sum(), rel=2e-3)


def test_convolve_psf_conserves_flux_and_blurs():
    src = gaussian_map(PIX, 64, 0.5, 50.0)
    out = imaging.convolve_psf(src, 1.4)
    assert out.sum() == pytest.approx(src.sum(), rel=2e-3)
    assert out.max() < 0.5 * src.max()  # the PSF spreads the peak
    assert np.array_equal(imaging.convolve_psf(src, None), src)


def test_render_profile_conserves_flux():
    # a de Vaucouleurs bulge (truncated at 8 r_e, all inside the stamp) through the PSF
    prof = galsim.Sersic(n=4, half_light_radius=1.0, trunc=8.0, flux=25.0)
    for fwhm in (1.4, None):
        img = imaging.render_profile(prof, fwhm, size=66)
        assert img.sum() == pytest.approx(25.0, rel=0.01)


def test_resample_keeps_orientation():
    # source up and to the right of centre in array terms (+x = column, +y = row index)
    src = gaussian_map(0.1, 200, 0.4, 10.0, centre=(5.0, 3.0))
    out = imaging.resample(src, 0.1, size=64)
    r, c = np.unravel_index(out.argmax(), out.shape)
    assert c == pytest.approx(31.5 + 5.0 / PIX, abs=1.0)
    assert r == pytest.approx(31.5 + 3.0 / PIX, abs=1.0)


# ------------------------------------------------------------------ PSF
@pytest.mark.parametrize("seeing", [1.1, 1.4, 2.0])
def test_psf_fwhm_matches_request(seeing):
    # a point source seen through the model, at a fine pixel scale so the fit sees the PSF
    fine = 0.1
    point = np.zeros((301, 301))
    point[150, 150] = 100.0
    img = imaging.convolve_psf(point, seeing, pixel_scale_arcsec=fine)
    assert fit_fwhm(img, fine) == pytest.approx(seeing, rel=0.03)


def test_psf_fwhm_on_sdss_pixels_and_bands():
    cond = imaging.Conditions(seeing=1.5)
    img = imaging.render_profile(galsim.DeltaFunction(flux=100.0), cond.fwhm("r"), size=41)
    # on 0.396" pixels the pixel response adds a little width
    assert fit_fwhm(img, PIX) == pytest.approx(math.hypot(1.5, 0.4 * PIX), rel=0.05)
    assert cond.fwhm("g") > cond.fwhm("r") > cond.fwhm("i")
    assert cond.fwhm("g") / cond.fwhm("r") == pytest.approx((4718.87 / 6185.19) ** -0.3)


def test_seeing_distribution_matches_sdss_quartiles():
    rng = np.random.default_rng(3)
    s = np.array([imaging.draw_conditions(rng).seeing for _ in range(4000)])
    q1, q2, q3 = np.percentile(s, [25, 50, 75])
    assert q1 == pytest.approx(1.30, abs=0.03)
    assert q2 == pytest.approx(1.43, abs=0.03)
    assert q3 == pytest.approx(1.58, abs=0.03)


# ------------------------------------------------------------------ noise
@pytest.mark.parametrize("band", ["g", "r", "i"])
def test_sky_noise_level(band):
    cond = imaging.Conditions(seeing=1.4, sky_mag_r=20.86, camcol=3)
    rng = np.random.default_rng(1)
    out = imaging.add_noise(np.zeros((300, 300)), band, cond, rng)
    resid = out - imaging.sky_residual(out.shape, band, cond)
    assert resid.mean() == pytest.approx(0.0, abs=0.01 * cond.noise_sigma(band))
    assert resid.std() == pytest.approx(cond.noise_sigma(band), rel=0.02)
    # the documented SDSS per-pixel sigmas: g 0.018, r 0.029, i 0.046 nMgy (sdss.md 1.7)
    assert cond.noise_sigma(band) == pytest.approx({"g": 0.018, "r": 0.029, "i": 0.046}[band], rel=0.12)


def _published_sigma(mag_sky, nmgy_per_count, gain, dark_variance):
    """Per-pixel blank-sky sigma (nMgy) by hand from the frame datamodel recipe (sdss.md 1.7)."""
    sky_nmgy = 10 ** (-0.4 * (mag_sky - 22.5)) * 0.396127**2
    return nmgy_per_count * np.sqrt(sky_nmgy / (nmgy_per_count * gain) + dark_variance)


def test_blank_sky_channel_ratio_follows_the_published_constants():
    # Known answer for the i-band (R channel) noise: a blank-sky cutout (no galaxy) through the noise
    # model and the colour recipe.  Published numbers, camcol 3, r sky 20.86 mag/arcsec^2 (DR7 median),
    # g - r = 0.9 and i - r = -0.6 (Field-table sky averages), nMgy/count 0.0038 / 0.0051 / 0.0067,
    # gain 3.845 / 4.72 / 4.86 e-/DN, dark variance 1.3225 / 1.3225 / 4.6225 DN^2, scales 3.6 / 2.6 / 2.0.
    sig = {"g": _published_sigma(21.76, 0.0038, 3.845, 1.3225), "r": _published_sigma(20.86, 0.0051, 4.72, 1.3225),
           "i": _published_sigma(20.26, 0.0067, 4.86, 4.6225)}
    expected = {"R": 2.0 * sig["i"], "G": 2.6 * sig["r"], "B": 3.6 * sig["g"]}  # R/G 1.19, R/B 1.34
    cond = imaging.Conditions(seeing=1.4, sky_mag_r=20.86, camcol=3)
    predicted = imaging.channel_sigma(cond, display_gain=1.0)
    for ch in "RGB":
        assert predicted[ch] == pytest.approx(expected[ch], rel=1e-3)
    rng = np.random.default_rng(5)
    # the smooth sky residual is taken out so that every band has mean 0: clipping at 0 then scales
    # with sigma (std of max(0, sigma z) = 0.5838 sigma) and the channel ratios survive it
    maps = {b: imaging.add_noise(np.zeros((300, 300)), b, cond, rng) - imaging.sky_residual((300, 300), b, cond)
            for b in "gri"}
    rgb = imaging.to_uint8(imaging.colour_stretch(maps["i"], maps["r"], maps["g"]))  # default display chain
    std = {ch: rgb[..., k].astype(float).std() for k, ch in enumerate("RGB")}
    z = np.linspace(-8, 8, 200001)
    w = np.exp(-z**2 / 2) / np.sum(np.exp(-z**2 / 2))

    def byte_std(a):  # std of floor(a * max(0, z)), z standard normal: clipping and bytes, no asinh
        v = np.floor(a * np.clip(z, 0, None))
        return np.sqrt(np.sum(w * v**2) - np.sum(w * v) ** 2)
    for ch in "RGB":  # 8-bit sigma before clipping: 256 * display gain * scale * sigma (~8-11 levels)
        assert std[ch] == pytest.approx(byte_std(256 * imaging.DISPLAY_GAIN * expected[ch]), rel=0.02)
    assert std["R"] / std["G"] == pytest.approx(expected["R"] / expected["G"], rel=0.03)
    assert std["R"] / std["B"] == pytest.approx(expected["R"] / expected["B"], rel=0.03)


def test_poisson_noise_of_the_source():
    cond = imaging.Conditions(camcol=3)
    flux = 40.0  # nMgy per pixel, far above the sky
    out = imaging.add_noise(np.full((300, 300), flux), "r", cond, np.random.default_rng(2))
    expected_var = cond.noise_sigma("r") ** 2 + flux * imaging.NMGY_PER_COUNT["r"] / cond.gain("r")
    assert out.var() == pytest.approx(expected_var, rel=0.03)
    assert out.mean() == pytest.approx(flux, rel=1e-3)


# ------------------------------------------------------------------ colour recipe
def test_colour_recipe_known_pixels():
    # published recipe (display gain 1, N = 2.25); bytes computed by hand:
    # R, G, B = 2.0*0.1, 2.6*0.1, 3.6*0.1; s = 0.82; fac = asinh(1.845) / 1.845 = 0.74369;
    # floor(256 * (0.14874, 0.19336, 0.26773)) = (38, 49, 68)
    one = np.ones((1, 1))
    rgb = imaging.to_uint8(imaging.colour_stretch(0.1 * one, 0.1 * one, 0.1 * one, display_gain=1.0,
                                                  nonlinearity=2.25))
    assert rgb[0, 0].tolist() == [38, 49, 68]
    # saturated pixel: the largest channel goes to 255 and the colour ratios are kept
    rgb = imaging.colour_stretch(10 * one, 5 * one, 1 * one, display_gain=1.0, nonlinearity=2.25)
    assert rgb[0, 0].max() == pytest.approx(1.0)
    assert rgb[0, 0, 1] / rgb[0, 0, 0] == pytest.approx(2.6 * 5 / (2.0 * 10))
    assert imaging.to_uint8(rgb)[0, 0, 0] == 255
    # zero stays black
    assert imaging.to_uint8(imaging.colour_stretch(0 * one, 0 * one, 0 * one)).max() == 0


def test_colour_recipe_negative_total_djs_vs_astropy():
    one = np.ones((1, 1))
    i, r, g = 0.05 * one, -0.05 * one, -0.05 * one  # s = 0.1 - 0.13 - 0.18 < 0
    djs = imaging.to_uint8(imaging.colour_stretch(i, r, g, display_gain=1.0, nonlinearity=2.25))
    fac = math.asinh(2.25 * -0.21) / (2.25 * -0.21)
    assert djs[0, 0].tolist() == [math.floor(256 * 0.1 * fac), 0, 0]
    ast = imaging.colour_stretch(i, r, g, display_gain=1.0, nonlinearity=2.25, method="astropy")
    assert ast.max() == 0.0  # astropy's make_lupton_rgb blacks out pixels with I <= 0


def test_colour_recipe_astropy_equals_djs_for_positive_flux():
    rng = np.random.default_rng(0)
    i, r, g = (rng.uniform(0, 3, (20, 20)) for _ in range(3))
    a = imaging.colour_stretch(i, r, g, method="astropy")
    b = imaging.colour_stretch(i, r, g, method="djs")
    assert np.abs(a - b).max() < 1e-9
    with pytest.raises(ValueError):
        imaging.colour_stretch(i, r, g, method="nope")


# ------------------------------------------------------------------ JPEG and the whole chain
def test_jpeg_matches_real_sdss_cutout_encoding(tmp_path):
    rgb = (np.random.default_rng(0).uniform(0, 255, (64, 64, 3))).astype(np.uint8)
    path = tmp_path / "x.jpg"
    imaging.save_jpeg(rgb, path)
    ours = Image.open(path)
    real = Image.open(os.path.join(ROOT, "data", "examples", "SDSS_example.png"))  # JPEG bytes
    assert ours.format == real.format == "JPEG"
    assert ours.quantization == real.quantization  # quality 75 tables
    from PIL import JpegImagePlugin
    assert JpegImagePlugin.get_sampling(ours) == JpegImagePlugin.get_sampling(real) == 2  # 4:2:0
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]
    assert Image.open(io.BytesIO(imaging.to_jpeg_bytes(rgb))).size == (64, 64)


def _maps():
    m = gaussian_map(0.2, 120, 1.2, 80.0)
    return {"g": 0.4 * m, "r": m, "i": 1.4 * m}


def test_observe_is_deterministic_and_shaped():
    a = imaging.observe(_maps(), 0.2, np.random.default_rng(5))
    b = imaging.observe(_maps(), 0.2, np.random.default_rng(5))
    c = imaging.observe(_maps(), 0.2, np.random.default_rng(6))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # the galaxy is in the centre, red-yellow (R > G > B for this colour), sky dark
    centre = a[28:36, 28:36].reshape(-1, 3).mean(0)
    assert centre[0] > centre[1] > centre[2] > 20
    assert np.median(a[:6]) < 15


def test_observe_noise_free_matches_stretch_of_resampled_maps():
    cond = imaging.Conditions(seeing=1.4)
    out = imaging.observe(_maps(), 0.2, np.random.default_rng(0), conditions=cond, noise=False, server=False)
    bands = {b: imaging.convolve_psf(imaging.resample(m, 0.2, size=66), cond.fwhm(b)) for b, m in _maps().items()}
    ref = imaging.to_uint8(imaging.colour_stretch(bands["i"], bands["r"], bands["g"]))[1:65, 1:65]
    assert np.array_equal(out, ref)


def test_observe_rejects_missing_band():
    with pytest.raises(ValueError, match="lacks band"):
        imaging.observe({"g": np.zeros((4, 4)), "r": np.zeros((4, 4))}, 0.4, np.random.default_rng(0))


# ------------------------------------------------------------------ known profiles after the PSF
def _growth(img):
    """Curve of growth about the image centre -> function f -> radius (pixels) enclosing f of the stamp's light."""
    n = img.shape[0]
    yy, xx = np.indices(img.shape)
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order])
    return lambda f: float(np.interp(f * cum[-1], cum, r[order]))


def _analytic_sersic_through_psf(n, re, fwhm, beta=imaging.PSF_BETA, over=9, size=64):
    """Independent reference (no GalSim): the Sersic and Moffat formulas on a grid 9x finer than SDSS
    pixels, convolved by FFT, then summed into 0.396" pixels."""
    from scipy import signal, special
    fine = PIX / over
    m = size * over
    c = (np.arange(m) - (m - 1) / 2) * fine
    x, y = np.meshgrid(c, c)
    b = special.gammaincinv(2 * n, 0.5)
    gal = np.exp(-b * (np.hypot(x, y) / re) ** (1 / n))
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
    k = np.hypot(x, y)[m // 2 - 4 * over * 4: m // 2 + 4 * over * 4, m // 2 - 4 * over * 4: m // 2 + 4 * over * 4]
    kern = (1 + (k / alpha) ** 2) ** -beta
    img = signal.fftconvolve(gal, kern / kern.sum(), mode="same")
    return img.reshape(size, over, size, over).sum(axis=(1, 3))


@pytest.mark.parametrize("n", [0.7, 1.0, 4.0])  # late-type disc (relations.DISC_N), exponential, bulge
def test_sersic_half_light_radius_and_concentration_after_psf(n):
    """A Sersic galaxy (r_e = 2", seeing 1.4") drawn by the imaging model has the half-light radius and
    concentration C = 5 log10(r80/r20) of the analytic profile convolved with the Moffat PSF: r50
    within 3 %, C within 0.05.  Without the PSF, r50 is r_e itself (within 3 %, pixelisation)."""
    re, fwhm = 2.0, 1.4
    prof = galsim.Sersic(n=n, half_light_radius=re, flux=100.0)
    ours = _growth(imaging.render_profile(prof, fwhm, size=64))
    ref = _growth(_analytic_sersic_through_psf(n, re, fwhm))
    assert ours(0.5) == pytest.approx(ref(0.5), rel=0.03)
    c_ours, c_ref = 5 * math.log10(ours(0.8) / ours(0.2)), 5 * math.log10(ref(0.8) / ref(0.2))
    assert c_ours == pytest.approx(c_ref, abs=0.05)
    assert ours(0.5) > re / PIX  # the PSF makes the galaxy larger ...
    from scipy import special
    c_intrinsic = 5 * n * math.log10(special.gammaincinv(2 * n, 0.8) / special.gammaincinv(2 * n, 0.2))
    # ... and moves C from the bare profile's towards the Moffat's own (enclosed 1 - (1 + (r/a)^2)^(1-beta)):
    # down for n >= 1, up for the flat-cored n = 0.7 disc
    beta = imaging.PSF_BETA
    c_psf = 5 * math.log10(math.sqrt(0.2 ** (1 / (1 - beta)) - 1) / math.sqrt(0.8 ** (1 / (1 - beta)) - 1))
    assert min(c_intrinsic, c_psf) < c_ours < max(c_intrinsic, c_psf)
    big = galsim.Sersic(n=n, half_light_radius=re, flux=100.0, trunc=10.0)  # all light inside the stamp
    nopsf = _growth(imaging.render_profile(big, None, size=64))
    b = galsim.Sersic(n=n, half_light_radius=re, trunc=10.0).half_light_radius  # r_e of the truncated profile
    assert nopsf(0.5) * PIX == pytest.approx(b, rel=0.03)

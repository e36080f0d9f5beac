#!/usr/bin/env python3
"""Install visdom's JavaScript/CSS/font files from the npm registry (offline server).

The visdom server (0.2.4) downloads about 30 static files from CDNs
(unpkg, cdn.plot.ly, d3js.org, cdnjs) every time it starts and crashes when it
cannot reach them, which leaves a blank page on machines without internet.
Every one of those files is published in the npm registry at the versions
visdom's ``server/build.py: download_scripts`` names.  This script fetches the
package tarballs from the npm registry (the address npm itself uses, so a
registry mirror configured for npm works too), checks their sha512 integrity,
extracts only the files visdom needs into ``<visdom>/static`` under the names
the server expects, and writes ``static/version.built`` holding the installed
visdom version.  With that file present and every file in place the server
skips its download step and starts offline.

Nothing third-party is committed to this repository: the files are fetched at
install time.  A re-run with everything in place returns at once.

Usage::

    python tools/visdom_setup.py [--static-dir DIR] [--registry URL] [--force]

Exit status 0 when every file is in place, 1 (with a one-line message) when
something could not be fetched.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: npm package -> {member inside the tarball (below "package/"): targets below static/}.
#: The targets are the names visdom's build.py gives each CDN download.  The
#: glyphicons SVG is stored twice: under build.py's odd name (with the URL
#: fragment; the server checks that name exists) and under the plain name the
#: browser asks for (it drops the "#..." fragment of bootstrap.css's url()).
NPM_FILES: dict[str, dict[str, list[str]]] = {
    "jquery@3.1.1": {"dist/jquery.min.js": ["js/jquery.min.js"]},
    "bootstrap@3.3.7": {
        "dist/js/bootstrap.min.js": ["js/bootstrap.min.js"],
        "dist/css/bootstrap.min.css": ["css/bootstrap.min.css"],
        "dist/fonts/glyphicons-halflings-regular.eot": ["fonts/glyphicons-halflings-regular.eot"],
        "dist/fonts/glyphicons-halflings-regular.woff2": ["fonts/glyphicons-halflings-regular.woff2"],
        "dist/fonts/glyphicons-halflings-regular.woff": ["fonts/glyphicons-halflings-regular.woff"],
        "dist/fonts/glyphicons-halflings-regular.ttf": ["fonts/glyphicons-halflings-regular.ttf"],
        "dist/fonts/glyphicons-halflings-regular.svg": [
            "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular",
            "fonts/glyphicons-halflings-regular.svg",
        ],
    },
    "react@16.2.0": {"umd/react.production.min.js": ["js/react-react.min.js"]},
    "react-dom@16.2.0": {"umd/react-dom.production.min.js": ["js/react-dom.min.js"]},
    "react-modal@3.1.10": {"dist/react-modal.min.js": ["js/react-modal.min.js"]},
    # cdn.plot.ly/plotly-2.11.1.min.js is the same build as this package's file
    "plotly.js-dist-min@2.11.1": {"plotly.min.js": ["js/plotly-plotly.min.js"]},
    "sjcl@1.0.7": {"sjcl.js": ["js/sjcl.js"]},
    "layout-bin-packer@1.4.0": {
        "dist/layout-bin-packer.js.map": ["js/layout-bin-packer.js.map"],
        "dist/layout-bin-packer.js": ["js/layout_bin_packer.js"],
    },
    # d3js.org/d3.v3.min.js and d3-selection-multi.v1.js
    "d3@3.5.17": {"d3.min.js": ["js/d3.v3.min.js"]},
    "d3-selection-multi@1.0.1": {"build/d3-selection-multi.js": ["js/d3-selection-multi.v1.js"]},
    "save-svg-as-png@1.4.17": {"lib/saveSvgAsPng.js": ["js/saveSvgAsPng.js"]},
    "react-resizable@1.4.6": {"css/styles.css": ["css/react-resizable-styles.css"]},
    "react-grid-layout@0.16.3": {"css/styles.css": ["css/react-grid-layout-styles.css"]},
    # unpkg serves a package's "main" file for a bare package URL
    "classnames@2.2.5": {"index.js": ["fonts/classnames"]},
    # cdnjs mathjax/2.7.5: the 8 files build.py fetches, same relative paths
    "mathjax@2.7.5": {
        rel: ["js/mathjax/2.7.5/" + rel]
        for rel in (
            "MathJax.js",
            "config/Safe.js",
            "config/TeX-AMS-MML_HTMLorMML.js",
            "extensions/Safe.js",
            "jax/output/SVG/fonts/TeX/fontdata.js",
            "jax/output/SVG/jax.js",
            "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
            "jax/output/SVG/config.js",
        )
    },
}

DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def visdom_static_dir() -> Path:
    """Return ``<site-packages>/visdom/static`` of the importable visdom, without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise RuntimeError("visdom is not installed in this Python (pip install visdom; see `make visdom`)")
    return Path(spec.origin).parent / "static"


def visdom_version() -> str:
    """Installed visdom version as the server compares it (``visdom.__version__``)."""
    from importlib.metadata import version

    return version("visdom")


def npm_registry() -> str:
    """Registry URL: $NPM_CONFIG_REGISTRY, else npm's own setting, else the public registry."""
    reg = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")
    if not reg and shutil.which("npm"):
        try:
            out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True,
                                 text=True, timeout=20)
            if out.returncode == 0 and out.stdout.strip().startswith("http"):
                reg = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            reg = None
    reg = reg or DEFAULT_REGISTRY
    return reg if reg.endswith("/") else reg + "/"


def all_targets() -> list[str]:
    """Every path below static/ that this script installs."""
    return [t for members in NPM_FILES.values() for targets in members.values() for t in targets]


def missing_targets(static: Path) -> list[str]:
    """Targets that do not exist yet or are empty."""
    return [t for t in all_targets() if not (static / t).is_file() or (static / t).stat().st_size == 0]


def _check_integrity(data: bytes, dist: dict, spec: str) -> None:
    integrity = dist.get("integrity", "")
    if integrity.startswith("sha512-"):
        want = base64.b64decode(integrity[len("sha512-"):])
        if hashlib.sha512(data).digest() != want:
            raise RuntimeError(f"{spec}: tarball does not match the registry's sha512 integrity")
    elif dist.get("shasum"):
        if hashlib.sha1(data).hexdigest() != dist["shasum"]:
            raise RuntimeError(f"{spec}: tarball does not match the registry's shasum")


def fetch_package(spec: str, registry: str, timeout: float = 60.0) -> bytes:
    """Download the tarball of ``name@version`` from the npm registry and verify it.

    Returns
    -------
    bytes
        The gzipped tarball.
    """
    import requests

    name, version = spec.rsplit("@", 1)
    meta_url = f"{registry}{name}/{version}"
    resp = requests.get(meta_url, timeout=timeout, headers={"Accept": "application/json"})
    resp.raise_for_status()
    dist = resp.json()["dist"]
    tar = requests.get(dist["tarball"], timeout=timeout)
    tar.raise_for_status()
    _check_integrity(tar.content, dist, spec)
    return tar.content


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def extract(tarball: bytes, members: dict[str, list[str]], static: Path, spec: str) -> int:
    """Write the wanted members of one package tarball under ``static``; return files written."""
    written = 0
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tf:
        # npm tarballs put everything under one top folder, nearly always "package/"
        names = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if m.isfile() and "/" in m.name}
        for member, targets in members.items():
            if member not in names:
                raise RuntimeError(f"{spec}: file {member} not found in the npm tarball")
            data = tf.extractfile(names[member]).read()
            for target in targets:
                _atomic_write(static / target, data)
                written += 1
    return written


def install(static: Path | None = None, registry: str | None = None, force: bool = False,
            log=print) -> int:
    """Put every static file in place and write ``version.built``.

    Returns
    -------
    int
        Number of files written (0 when everything was already there).
    """
    static = static or visdom_static_dir()
    version = visdom_version()
    built = static / "version.built"
    missing = all_targets() if force else missing_targets(static)
    # index.html links ../user/style.css for user overrides; an empty one stops
    # the server logging an error for it on every page load
    user_css = static.parent / "user" / "style.css"
    if not user_css.exists():
        _atomic_write(user_css, b"")
    built_ok = built.is_file() and built.read_text().strip() == version
    if not missing and built_ok:
        log(f"visdom {version} static files already in place in {static}")
        return 0
    registry = registry or npm_registry()
    wanted = {spec: {m: t for m, t in members.items() if any(x in missing for x in t)}
              for spec, members in NPM_FILES.items()}
    written = 0
    for spec, members in wanted.items():
        if not members:
            continue
        written += extract(fetch_package(spec, registry), members, static, spec)
        log(f"  {spec}: {len(members)} file(s)")
    # version.built last: the server trusts it to mean "everything is here"
    _atomic_write(built, version.encode())
    log(f"visdom {version}: wrote {written} static file(s) from {registry} into {static}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--static-dir", type=Path, default=None,
                        help="visdom static folder (default: the installed visdom's)")
    parser.add_argument("--registry", default=None, help="npm registry URL (default: npm's setting)")
    parser.add_argument("--force", action="store_true", help="fetch every file again")
    args = parser.parse_args(argv)
    try:
        install(args.static_dir, args.registry, args.force)
    except Exception as exc:  # one line, no traceback: this is an install step
        print(f"visdom_setup: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Zendesk sidebar app: a private Zendesk Apps Framework v2 app, as an uploadable zip.

    build_app_zip(settings, Path("tactful-zendesk-app.zip"))

The zip holds what Zendesk needs for a server-side app and nothing else:

- ``manifest.json``: framework 2.0, private, one location (Support ``ticket_sidebar``,
  flexible) whose iframe is ``[zendesk] public_url`` + ``/app/sidebar`` served by Tactful,
  with ``signedUrls`` on: Zendesk then POSTs the first request of the iframe with a form
  field ``token``, a JWT signed RS256 with the app's private key (``[zendesk]
  app_public_key`` verifies it);
- ``translations/en.json``: the name and descriptions Zendesk shows;
- ``assets/logo.png`` (320×320) and ``assets/logo-small.png`` (128×128): the Tactful mark,
  drawn here as RGBA PNGs (zlib + struct, no imaging library).

Zendesk's validator (the ``zendesk_apps_support`` checks run by ``zcli apps:validate`` and
by the upload) accepts an absolute location URL only when it is ``https://`` or its host is
``localhost``; ``location_url`` applies the same rule, with a clear message, before anything
is written. The output is deterministic: the same settings give a byte-identical zip.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tactful import __version__
from tactful.config import Settings
from tactful.config.models import ZendeskSettings

SIDEBAR_PATH = "/app/sidebar"
APP_NAME = "Tactful"
FRAMEWORK_VERSION = "2.0"
DEFAULT_ZIP_NAME = "tactful-zendesk-app.zip"
#: The Tactful teal (logo background); the "T" is white.
BRAND_RGB = (0x0F, 0x76, 0x6E)
LOGO_LARGE = "assets/logo.png"
LOGO_SMALL = "assets/logo-small.png"
#: Required pixel sizes of the logos (Zendesk's app brand asset guidelines).
LOGO_SIZES = {LOGO_LARGE: 320, LOGO_SMALL: 128}
MANIFEST = "manifest.json"
TRANSLATIONS = "translations/en.json"
#: Every file of the zip, in the order written.
FILES = (MANIFEST, TRANSLATIONS, LOGO_LARGE, LOGO_SMALL)

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build clock inside
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class AppPackageError(ValueError):
    """The app cannot be built from these settings; the message says what to change."""


# --------------------------------------------------------------------------- manifest


def location_url(public_url: str | None) -> str:
    """The sidebar iframe URL (``public_url`` + ``/app/sidebar``), checked as Zendesk does."""
    if not public_url or not public_url.strip():
        raise AppPackageError(
            "[zendesk] public_url is not set: the https:// address where agents' browsers "
            'reach Tactful, e.g. public_url = "https://tactful.example.com"'
        )
    base = public_url.strip().rstrip("/")
    try:
        parts = urlsplit(base)
        host = parts.hostname
    except ValueError as exc:
        raise AppPackageError(f"[zendesk] public_url is not a valid URL: {base!r} ({exc})") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise AppPackageError(
            f"[zendesk] public_url must be an https:// URL with a host name, got {base!r}"
        )
    if parts.query or parts.fragment:
        raise AppPackageError(
            f"[zendesk] public_url must not have a query or fragment, got {base!r}"
        )
    if parts.scheme == "http" and host != "localhost":
        hint = (
            f" (for development use http://localhost{':' + str(parts.port) if parts.port else ''}"
            ": Zendesk accepts plain http only for the host name localhost, not for an IP "
            "address)"
            if _is_loopback(host)
            else ""
        )
        raise AppPackageError(
            f"[zendesk] public_url must be https:// (agents' browsers load the sidebar inside "
            f"Zendesk, which is served over https), got {base!r}{hint}"
        )
    return base + SIDEBAR_PATH


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1") or host.startswith("127.")


# What Zendesk's manifest reference requires of a v2 app (author with name, email and url;
# https://developer.zendesk.com/documentation/apps/app-developer-guide/manifest/), as the
# paths of the keys that must be present and non-empty.
REQUIRED_MANIFEST_KEYS = (
    ("name",),
    ("author", "name"),
    ("author", "email"),
    ("author", "url"),
    ("defaultLocale",),
    ("location",),
    ("version",),
    ("frameworkVersion",),
)


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What makes ``manifest`` fail Zendesk's manifest reference (empty: nothing)."""
    problems = []
    for path in REQUIRED_MANIFEST_KEYS:
        value: Any = manifest
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value in (None, "", {}):
            problems.append(f"manifest.json needs {'.'.join(path)}")
    if manifest.get("frameworkVersion") != FRAMEWORK_VERSION:
        problems.append(f"manifest.json frameworkVersion must be {FRAMEWORK_VERSION!r}")
    return problems


def build_manifest(zendesk: ZendeskSettings) -> dict[str, Any]:
    """``manifest.json`` for these settings, checked against Zendesk's manifest reference
    (raises ``AppPackageError``)."""
    url = location_url(zendesk.public_url)
    if not zendesk.email:
        raise AppPackageError(
            "[zendesk] email is not set: Zendesk's app manifest requires author.email, the "
            "address users of the app send support requests to"
        )
    author = {
        "name": APP_NAME,
        "email": zendesk.email,
        "url": url.removesuffix(SIDEBAR_PATH) + "/",
    }
    manifest = {
        "name": APP_NAME,
        "author": author,
        "defaultLocale": "en",
        "private": True,
        "location": {"support": {"ticket_sidebar": {"url": url, "flexible": True}}},
        "version": __version__,
        "frameworkVersion": FRAMEWORK_VERSION,
        "signedUrls": True,
    }
    problems = manifest_problems(manifest)
    if problems:
        raise AppPackageError("; ".join(problems))
    return manifest


def build_translations() -> dict[str, Any]:
    """``translations/en.json``: what Zendesk shows about the app (no settings to label)."""
    return {
        "app": {
            "name": APP_NAME,
            "short_description": "Support state, segments and marketing profile of the requester.",
            "long_description": (
                "Tactful turns support activity into per-customer support states and "
                "segments and keeps every marketing channel consistent with them. The ticket "
                "sidebar shows the requester's support state and why (which rules, since "
                "when, which destinations have applied it), their marketing profile (lists, "
                "opt-out status, engagement, value score), and lets the agent set the "
                "customer's health, remove them from lists, change their opt-out status and "
                "move their marketing profile to a new email address."
            ),
            "installation_instructions": (
                "Built by `tactful app package` for one Tactful deployment: the sidebar is "
                "served by that deployment (its [zendesk] public_url). After installing, copy "
                "the app's public key into [zendesk] app_public_key so that Tactful can "
                "verify the signed requests of the sidebar, and restart tactful serve. See "
                "docs/sidebar.md."
            ),
        }
    }


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- PNG


@dataclass(frozen=True)
class PngHeader:
    """The IHDR fields of a PNG."""

    width: int
    height: int
    bit_depth: int
    colour_type: int  # 6: RGBA (truecolour with alpha)
    interlace: int


def png_header(data: bytes) -> PngHeader:
    """Read the IHDR chunk (raises ``ValueError`` if ``data`` does not start like a PNG)."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG: bad signature")
    if len(data) < 33:
        raise ValueError("not a PNG: too short for an IHDR chunk")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("not a PNG: the first chunk is not a 13-byte IHDR")
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(kind + body) != crc:
        raise ValueError("not a PNG: IHDR CRC mismatch")
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", body)
    return PngHeader(width, height, depth, colour, interlace)


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, from its IHDR chunk."""
    header = png_header(data)
    return header.width, header.height


def check_png(data: bytes, width: int, height: int) -> None:
    """Raise ``ValueError`` unless ``data`` is a PNG of exactly ``width`` × ``height``."""
    got = png_size(data)
    if got != (width, height):
        raise ValueError(f"PNG is {got[0]}×{got[1]}, expected {width}×{height}")


def encode_png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA, non-interlaced PNG of ``rgba`` (rows top to bottom, 4 bytes a pixel)."""
    stride = width * 4
    if len(rgba) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of RGBA, got {len(rgba)}")
    raw = b"".join(b"\x00" + rgba[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _box(px: float, py: float, cx: float, cy: float, hx: float, hy: float, r: float) -> float:
    """Signed distance (pixels; < 0 inside) from a point to a rounded rectangle."""
    qx = abs(px - cx) - hx + r
    qy = abs(py - cy) - hy + r
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def _cover(distance: float) -> float:
    """Anti-aliased coverage of a pixel whose centre is ``distance`` from an edge."""
    return min(1.0, max(0.0, 0.5 - distance))


@lru_cache(maxsize=8)
def logo_png(size: int, *, rounded: bool) -> bytes:
    """The Tactful mark: a white "T" on the brand teal, ``size`` × ``size`` RGBA.

    ``rounded``: a rounded square on a transparent background (the small icon); otherwise
    the teal fills the square (Zendesk rounds the corners of the large icon itself).
    """
    s = float(size)
    half = s / 2
    corner = 0.22 * s
    # the T: a bar and a stem, each with slightly rounded corners
    bar = (half, 0.30 * s, 0.26 * s, 0.075 * s)
    stem = (half, 0.535 * s, 0.075 * s, 0.245 * s)
    t_round = 0.02 * s
    br, bg, bb = BRAND_RGB
    out = bytearray(size * size * 4)
    i = 0
    for y in range(size):
        py = y + 0.5
        for x in range(size):
            px = x + 0.5
            alpha = _cover(_box(px, py, half, half, half, half, corner)) if rounded else 1.0
            t = _cover(min(_box(px, py, *bar, t_round), _box(px, py, *stem, t_round)))
            out[i] = round(br + (255 - br) * t)
            out[i + 1] = round(bg + (255 - bg) * t)
            out[i + 2] = round(bb + (255 - bb) * t)
            out[i + 3] = round(255 * alpha)
            i += 4
    return encode_png(size, size, bytes(out))


# --------------------------------------------------------------------------- zip


def app_files(settings: Settings | ZendeskSettings) -> dict[str, bytes]:
    """Every file of the app, by path inside the zip, in ``FILES`` order."""
    zendesk = settings.zendesk if isinstance(settings, Settings) else settings
    files = {
        MANIFEST: _json_bytes(build_manifest(zendesk)),
        TRANSLATIONS: _json_bytes(build_translations()),
        LOGO_LARGE: logo_png(LOGO_SIZES[LOGO_LARGE], rounded=False),
        LOGO_SMALL: logo_png(LOGO_SIZES[LOGO_SMALL], rounded=True),
    }
    for path, size in LOGO_SIZES.items():
        check_png(files[path], size, size)
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``files`` (fixed times, modes and compression)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so that the mode below is read
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def build_app_zip(settings: Settings | ZendeskSettings, out: Path | str) -> Path:
    """Write the app zip to ``out``; return its path.

    ``out`` naming a directory (an existing one, or any path ending in ``/``) gets
    ``DEFAULT_ZIP_NAME`` in it; missing parent directories are created.

    Raises ``AppPackageError`` when the settings cannot make a valid app (nothing is written)
    and ``OSError`` when the file cannot be written. The file is replaced atomically.
    """
    data = zip_bytes(app_files(settings))
    target = Path(out)
    if target.is_dir() or str(out).endswith(("/", os.sep)):
        target = target / DEFAULT_ZIP_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tactful-app-", suffix=".zip", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


__all__ = [
    "APP_NAME",
    "BRAND_RGB",
    "DEFAULT_ZIP_NAME",
    "FILES",
    "LOGO_LARGE",
    "LOGO_SIZES",
    "LOGO_SMALL",
    "MANIFEST",
    "SIDEBAR_PATH",
    "TRANSLATIONS",
    "AppPackageError",
    "PngHeader",
    "app_files",
    "build_app_zip",
    "build_manifest",
    "build_translations",
    "check_png",
    "encode_png",
    "location_url",
    "logo_png",
    "png_header",
    "png_size",
    "zip_bytes",
]

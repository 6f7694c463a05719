"""``tactful app package``: the Zendesk sidebar app zip (manifest, translations, logos).

The expectations follow Zendesk's own rules for a private Apps Framework v2 app (the
``zendesk_apps_support`` validations behind ``zcli apps:validate`` and the upload): an
author, ``defaultLocale`` with its ``translations/<locale>.json``, ``frameworkVersion``
"2.0", an absolute location URL that is https (or on the host localhost), booleans where
booleans belong; and the brand asset sizes (logo.png 320×320, logo-small.png 128×128).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from tactful import __version__
from tactful.cli.main import main
from tactful.config import Settings, settings_from_mapping
from tactful.zendesk.app_package import (
    BRAND_RGB,
    DEFAULT_ZIP_NAME,
    FILES,
    AppPackageError,
    app_files,
    build_app_zip,
    check_png,
    encode_png,
    location_url,
    manifest_problems,
    png_header,
    png_size,
)

PUBLIC_URL = "https://tactful.example.com"


def settings(**zendesk: Any) -> Settings:
    given = {"public_url": PUBLIC_URL, "email": "ops@glowlab.example", **zendesk}
    return settings_from_mapping({"zendesk": {k: v for k, v in given.items() if v is not None}})


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return {info.filename: zf.read(info) for info in zf.infolist()}


def decode_rgba(data: bytes) -> list[list[tuple[int, int, int, int]]]:
    """Pixels of an 8-bit RGBA non-interlaced PNG (every filter type), straight from IDAT."""
    header = png_header(data)
    assert (header.bit_depth, header.colour_type, header.interlace) == (8, 6, 0)
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    assert pos == len(data), "bytes after IEND"
    raw = zlib.decompress(idat)
    w, h, bpp = header.width, header.height, 4
    stride = w * bpp
    assert len(raw) == h * (stride + 1)
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            else:
                assert ftype == 0, f"unknown filter {ftype}"
        rows.append(line)
        prev = line
    return [
        [(row[x * 4], row[x * 4 + 1], row[x * 4 + 2], row[x * 4 + 3]) for x in range(w)]
        for row in rows
    ]


# --------------------------------------------------------------------------- the zip


def test_zip_holds_exactly_the_app_files(tmp_path: Path) -> None:
    path = build_app_zip(settings(), tmp_path / "app.zip")
    assert path == tmp_path / "app.zip"
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == [
        "manifest.json",
        "translations/en.json",
        "assets/logo.png",
        "assets/logo-small.png",
    ]
    assert tuple(i.filename for i in infos) == FILES
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert (info.external_attr >> 16) & 0o777 == 0o644
        assert not info.is_dir()
    # no nested folder: Zendesk wants manifest.json at the root of the zip
    assert "manifest.json" in read_zip(path)


def test_manifest_fields_exactly(tmp_path: Path) -> None:
    files = read_zip(build_app_zip(settings(email="admin@yourbrand.com"), tmp_path / "a.zip"))
    assert files["manifest.json"].endswith(b"\n")
    assert json.loads(files["manifest.json"]) == {
        "name": "Tactful",
        "author": {
            "name": "Tactful",
            "email": "admin@yourbrand.com",
            "url": "https://tactful.example.com/",
        },
        "defaultLocale": "en",
        "private": True,
        "location": {
            "support": {
                "ticket_sidebar": {
                    "url": "https://tactful.example.com/app/sidebar",
                    "flexible": True,
                }
            }
        },
        "version": __version__,
        "frameworkVersion": "2.0",
        "signedUrls": True,
    }


def test_manifest_without_email_is_refused() -> None:
    """Zendesk's manifest reference requires author.email (issue 22)."""
    with pytest.raises(AppPackageError, match=r"\[zendesk\] email .*author\.email"):
        app_files(settings(public_url="https://example.com/tactful/", email=None))


def test_manifest_problems_follow_zendesks_reference() -> None:
    good = json.loads(app_files(settings())["manifest.json"])
    assert manifest_problems(good) == []
    bad = {**good, "author": {"name": "Tactful", "url": "https://x/"}, "frameworkVersion": "1.0"}
    assert manifest_problems(bad) == [
        "manifest.json needs author.email",
        "manifest.json frameworkVersion must be '2.0'",
    ]


def test_manifest_with_a_path_prefix() -> None:
    files = app_files(settings(public_url="https://example.com/tactful/"))
    manifest = json.loads(files["manifest.json"])
    assert manifest["author"]["url"] == "https://example.com/tactful/"
    assert manifest["location"]["support"]["ticket_sidebar"]["url"] == (
        "https://example.com/tactful/app/sidebar"
    )
    # the rules Zendesk's validator applies to a v2 manifest
    assert manifest["frameworkVersion"] == "2.0"
    assert f"translations/{manifest['defaultLocale']}.json" in files
    for key in ("private", "signedUrls"):
        assert isinstance(manifest[key], bool)
    assert "parameters" not in manifest  # no settings: nothing for the admin to fill in


def test_translations_keys() -> None:
    files = app_files(settings())
    translations = json.loads(files["translations/en.json"])
    assert list(translations) == ["app"]
    app = translations["app"]
    assert set(app) == {
        "name",
        "short_description",
        "long_description",
        "installation_instructions",
    }
    assert all(isinstance(v, str) and v.strip() for v in app.values())
    assert app["name"] == json.loads(files["manifest.json"])["name"]
    assert len(app["name"]) <= 40  # the Zendesk listing limit for a name
    assert len(app["short_description"]) <= 80
    assert "app_public_key" in app["installation_instructions"]


# --------------------------------------------------------------------------- logos


@pytest.mark.parametrize(
    ("path", "size"), [("assets/logo.png", 320), ("assets/logo-small.png", 128)]
)
def test_logos_are_rgba_pngs_of_the_required_size(tmp_path: Path, path: str, size: int) -> None:
    data = read_zip(build_app_zip(settings(), tmp_path / "a.zip"))[path]
    header = png_header(data)
    assert (header.width, header.height) == (size, size)
    assert png_size(data) == (size, size)
    assert (header.bit_depth, header.colour_type, header.interlace) == (8, 6, 0)
    check_png(data, size, size)
    with pytest.raises(ValueError, match="expected"):
        check_png(data, size + 1, size)

    pixels = decode_rgba(data)
    assert len(pixels) == size and all(len(row) == size for row in pixels)
    brand = (*BRAND_RGB, 255)
    white = (255, 255, 255, 255)
    mid = size // 2
    assert pixels[round(0.30 * size)][mid] == white  # the bar of the T
    assert pixels[round(0.62 * size)][mid] == white  # its stem
    assert pixels[round(0.62 * size)][round(0.25 * size)] == brand  # beside the stem
    assert pixels[size - round(0.1 * size)][mid] == brand  # under the T
    corner = pixels[0][0]
    if path == "assets/logo.png":
        assert corner == brand  # full bleed: Zendesk rounds the large icon itself
    else:
        assert corner[3] == 0  # rounded square on transparency
        assert pixels[mid][0] == brand
    alphas = {p[3] for row in pixels for p in row}
    if path == "assets/logo.png":
        assert alphas == {255}
    else:
        assert {0, 255} < alphas  # transparent outside, opaque inside, anti-aliased between


def test_png_header_rejects_what_is_not_a_png() -> None:
    good = encode_png(2, 1, bytes([1, 2, 3, 4, 5, 6, 7, 8]))
    assert png_size(good) == (2, 1)
    assert decode_rgba(good) == [[(1, 2, 3, 4), (5, 6, 7, 8)]]
    with pytest.raises(ValueError, match="signature"):
        png_header(b"GIF89a" + good[6:])
    with pytest.raises(ValueError, match="too short"):
        png_header(good[:20])
    broken = bytearray(good)
    broken[19] ^= 1  # a bit of the width
    with pytest.raises(ValueError, match="CRC"):
        png_header(bytes(broken))
    with pytest.raises(ValueError, match="bytes of RGBA"):
        encode_png(2, 2, b"\x00" * 8)


# --------------------------------------------------------------------------- determinism


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first = build_app_zip(settings(), tmp_path / "one" / "app.zip").read_bytes()
    second = build_app_zip(settings().zendesk, tmp_path / "two.zip").read_bytes()
    assert first == second
    # rebuilding over an existing file replaces it with the same bytes, no temp files left
    again = build_app_zip(settings(), tmp_path / "two.zip").read_bytes()
    assert again == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two.zip"]
    # a different public_url changes the manifest only
    other = read_zip(build_app_zip(settings(public_url="https://x.example"), tmp_path / "x.zip"))
    same = read_zip(tmp_path / "two.zip")
    assert [k for k in same if same[k] != other[k]] == ["manifest.json"]


def test_a_directory_as_out(tmp_path: Path) -> None:
    assert build_app_zip(settings(), tmp_path) == tmp_path / DEFAULT_ZIP_NAME
    new_dir = f"{tmp_path}/new/"
    assert build_app_zip(settings(), new_dir) == tmp_path / "new" / DEFAULT_ZIP_NAME
    assert (tmp_path / "new" / DEFAULT_ZIP_NAME).is_file()


# --------------------------------------------------------------------------- public_url


def test_error_without_public_url(tmp_path: Path) -> None:
    bare = settings_from_mapping({"zendesk": {"subdomain": "yourbrand"}})
    with pytest.raises(AppPackageError, match=r"\[zendesk\] public_url is not set"):
        build_app_zip(bare, tmp_path / "app.zip")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://tactful.example.com", "https://tactful.example.com/app/sidebar"),
        ("https://tactful.example.com/", "https://tactful.example.com/app/sidebar"),
        ("https://example.com:8443/t", "https://example.com:8443/t/app/sidebar"),
        ("http://localhost:8000", "http://localhost:8000/app/sidebar"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443/app/sidebar"),
    ],
)
def test_location_url_accepts(public_url: str, expected: str) -> None:
    assert location_url(public_url) == expected


@pytest.mark.parametrize(
    ("public_url", "message"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("http://tactful.example.com", "must be https://"),
        ("http://127.0.0.1:8000", "use http://localhost:8000"),
        ("ftp://tactful.example.com", "must be an https:// URL"),
        ("https://", "must be an https:// URL"),
        ("https://example.com/?a=1", "query or fragment"),
    ],
)
def test_location_url_rejects(public_url: str | None, message: str) -> None:
    with pytest.raises(AppPackageError, match=message.replace("?", r"\?")):
        location_url(public_url)


# --------------------------------------------------------------------------- CLI


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    monkeypatch.delenv("ZENDESK_APP_PUBLIC_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "400")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | str | None, str, str]:
    capsys.readouterr()
    try:
        code: int | str | None = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def write_config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "tactful.toml"
    path.write_text(body, encoding="utf-8")
    return str(path)


CONFIG = f"""
[zendesk]
subdomain = "yourbrand"
email = "ops@glowlab.example"
public_url = "{PUBLIC_URL}"
app_public_key = "env:ZENDESK_APP_PUBLIC_KEY"
"""


def test_cli_package_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, CONFIG)
    code, out, err = run(capsys, "--config", config, "app", "package", "--json")
    assert code == 0, err
    report = json.loads(out)
    zip_path = tmp_path / DEFAULT_ZIP_NAME
    assert report["path"] == str(zip_path.resolve())
    assert report["bytes"] == zip_path.stat().st_size
    assert report["files"] == list(FILES)
    assert report["sidebar_url"] == f"{PUBLIC_URL}/app/sidebar"
    assert report["signed_urls"] is True
    # the key's variable is not set yet (the app does not exist yet): not an error
    assert report["app_public_key_configured"] is False
    steps = " ".join(report["next_steps"])
    assert "Upload private app" in steps
    assert "https://yourbrand.zendesk.com/api/v2/apps/<APP_ID>/public_key.pem" in steps
    assert "ZENDESK_APP_PUBLIC_KEY" in steps
    assert read_zip(zip_path) == app_files(settings(subdomain="yourbrand"))


def test_cli_package_says_no_key_when_none_is_configured_and_another_secret_is_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another secret whose variable is not set yet does not make a key that is not in the
    file count as configured."""
    monkeypatch.delenv("TACTFUL_TEST_NO_SUCH_TOKEN", raising=False)
    no_key = CONFIG.replace('app_public_key = "env:ZENDESK_APP_PUBLIC_KEY"', "")
    config = write_config(tmp_path, no_key + 'api_token = "env:TACTFUL_TEST_NO_SUCH_TOKEN"\n')
    code, out, err = run(capsys, "--config", config, "app", "package", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["app_public_key_configured"] is False
    assert 'app_public_key = "env:ZENDESK_APP_PUBLIC_KEY"' in " ".join(report["next_steps"])


def test_cli_package_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZENDESK_APP_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nx\n")
    config = write_config(tmp_path, CONFIG)
    out_path = tmp_path / "build" / "app.zip"
    code, out, err = run(capsys, "--config", config, "app", "package", "--out", str(out_path))
    assert code == 0, err
    text = " ".join(out.split())
    assert f"wrote {out_path}" in text
    assert (
        "Admin Center > Apps and integrations > Zendesk Support apps > Upload private app" in text
    )
    assert "app_public_key is set" in text
    assert f"{PUBLIC_URL}/app/sidebar" in text
    assert out_path.is_file()


def test_cli_package_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[zendesk]\nsubdomain = "yourbrand"\n')
    code, _, err = run(capsys, "--config", config, "app", "package")
    assert code == 1
    assert "[zendesk] public_url is not set" in err
    assert not (tmp_path / DEFAULT_ZIP_NAME).exists()

    config = write_config(tmp_path, '[zendesk]\npublic_url = "http://tactful.example.com"\n')
    code, _, err = run(capsys, "--config", config, "app", "package")
    assert code == 1
    assert "must be https://" in err

    # an unresolved env: reference for what the zip is built from stays an error
    config = write_config(tmp_path, '[zendesk]\npublic_url = "env:TACTFUL_TEST_NO_SUCH_VAR"\n')
    code, _, err = run(capsys, "--config", config, "app", "package")
    assert code == 1
    assert "TACTFUL_TEST_NO_SUCH_VAR is not set" in err

    code, _, _ = run(capsys, "--config", config, "app")
    assert code == 2
    code, out, _ = run(capsys, "app", "package", "--help")
    assert code == 0
    assert "--out" in out

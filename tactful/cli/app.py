"""``tactful app package``: build the Zendesk sidebar app zip (docs/sidebar.md)."""

from __future__ import annotations

import hashlib
from typing import Any

from tactful.cli.base import App, CommandError, add_json, out_json, setup_settings, show_help
from tactful.config import Settings
from tactful.zendesk.app_package import (
    DEFAULT_ZIP_NAME,
    FILES,
    AppPackageError,
    build_app_zip,
    location_url,
)

#: The environment variable suggested for the key (as in the starter tactful.toml).
SUGGESTED_KEY_ENV = "ZENDESK_APP_PUBLIC_KEY"
_UPLOAD_PATH = "Admin Center > Apps and integrations > Zendesk Support apps > Upload private app"
# what the package is built from: an unresolved env: reference here is a real error
_NEEDED = ("zendesk.public_url", "zendesk.subdomain", "zendesk.email")


def register(sub: Any) -> None:
    a = sub.add_parser("app", help="the Zendesk sidebar app: package")
    asub = a.add_subparsers(dest="app_command", metavar="COMMAND")
    a.set_defaults(handler=lambda app: show_help(a))

    p = asub.add_parser(
        "package",
        help="build the Zendesk sidebar app zip (upload it as a private app)",
        description="Build the Zendesk Apps Framework v2 app that shows the Tactful sidebar "
        "on tickets: manifest.json (ticket_sidebar at [zendesk] public_url + /app/sidebar, "
        "signed URLs), translations/en.json and the logos. Upload the zip as a private app "
        "in Zendesk, then put the app's public key into [zendesk] app_public_key. The same "
        "configuration always gives the same zip, byte for byte.",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        default=DEFAULT_ZIP_NAME,
        help=f"where to write the zip (a directory: {DEFAULT_ZIP_NAME} in it; "
        f"default ./{DEFAULT_ZIP_NAME}); an existing file is replaced",
    )
    add_json(p)
    p.set_defaults(handler=cmd_package)


# --------------------------------------------------------------------------- settings


# --------------------------------------------------------------------------- package


def _admin_base(settings: Settings) -> str:
    sub = settings.zendesk.subdomain
    return f"https://{sub}.zendesk.com" if sub else "https://<subdomain>.zendesk.com"


def next_steps(settings: Settings, key_configured: bool, name: str | None) -> list[str]:
    """What to do with the zip, one sentence each."""
    base = _admin_base(settings)
    steps = [
        f"Upload it as a private app in {base}: {_UPLOAD_PATH}, name it Tactful, then "
        "install it (optionally restricted to some roles or groups). Later zips update that "
        "app rather than being uploaded as a second one.",
    ]
    where = (
        f'the environment variable {name} (read by [zendesk] app_public_key = "env:{name}")'
        if name
        else f'[zendesk] app_public_key (e.g. app_public_key = "env:{SUGGESTED_KEY_ENV}" '
        f"and the key in the environment variable {SUGGESTED_KEY_ENV})"
    )
    key = (
        f"Copy the app's public key into {where}: find the app's id in {base}/api/v2/apps/"
        f"owned.json (open it while signed in to Zendesk as an admin), then the key (PEM) is "
        f"at {base}/api/v2/apps/<APP_ID>/public_key.pem. Tactful checks the signed request "
        "of every sidebar load with it."
    )
    if key_configured:
        key = (
            "[zendesk] app_public_key is set: make sure it is the key of the app you installed "
            f"({base}/api/v2/apps/<APP_ID>/public_key.pem; the key belongs to the app, a second "
            "upload is another app with another key)."
        )
    steps.append(key)
    steps.append(
        "Restart tactful serve, open a ticket and the Tactful app in the ticket sidebar; "
        f"agents' browsers must be able to load {location_url(settings.zendesk.public_url)}."
    )
    return steps


def cmd_package(app: App) -> int:
    # Before the app exists its key does not either: ``app_public_key = "env:NAME"`` with
    # NAME not set yet (or any other secret not set yet) does not stop packaging, since the
    # zip is built from ``public_url``, ``subdomain`` and ``email`` only.
    setup = setup_settings(app, "app_public_key", may_wait=lambda loc: loc not in _NEEDED)
    settings = setup.settings
    key_configured = not setup.waiting and bool(settings.zendesk.app_public_key)
    try:
        path = build_app_zip(settings, app.args.out)
    except AppPackageError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write {app.args.out}: {exc}") from exc
    data = path.read_bytes()
    steps = next_steps(settings, key_configured, setup.env)
    sidebar = location_url(settings.zendesk.public_url)
    if app.args.json:
        out_json(
            {
                "path": str(path.resolve()),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "files": list(FILES),
                "sidebar_url": sidebar,
                "signed_urls": True,
                "app_public_key_configured": key_configured,
                "next_steps": steps,
            }
        )
        return 0
    say = app.out.print
    say(f"wrote {path} ({len(data):,} bytes): {', '.join(FILES)}", highlight=False, markup=False)
    say(f"sidebar: {sidebar} (signed URLs)", highlight=False, markup=False)
    say("next:", markup=False)
    for n, step in enumerate(steps, 1):
        say(f"  {n}. {step}", highlight=False, markup=False, soft_wrap=True)
    return 0

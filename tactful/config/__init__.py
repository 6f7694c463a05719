"""Configuration: ``tactful.toml`` loaded, resolved and validated once (product.md section 6).

    settings = load_settings()            # --config / TACTFUL_CONFIG / ./tactful.toml / defaults
    settings.segments[0].rule.evaluate(values, now)
    settings.reason_classifier().classify(tags, subject, custom_fields)

- A string value ``"env:NAME"`` anywhere reads the environment variable NAME (trimmed).
- Every problem is collected and reported at once by ``ConfigError`` (``.errors``), each
  prefixed by where it is: ``segments[2] (suppress_promos).cooldown: invalid duration
  '24x' ...``; list indices are 0-based and followed by the entry's name.
- ``[[states]]`` and ``[[segments]]`` rules are compiled here against ``STATE_FIELDS``; a
  state rule may not read ``support_state`` (the states compute it).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from tactful.config.alerts import AlertChannelSettings, AlertSettings
from tactful.config.models import (
    SECRET_KEY,
    STATE_FIELDS,
    STATE_RULE_FIELDS,
    ApiSettings,
    ConsentSettings,
    CsatSettings,
    DeliverySettings,
    DestinationSettings,
    EngineSettings,
    IdentitySettings,
    PrivacySettings,
    ReasonModelSettings,
    ReasonSettings,
    SegmentSettings,
    StateSettings,
    StoreSettings,
    ZendeskSettings,
)
from tactful.core.reasons import ReasonClassifier
from tactful.core.rules import Rule, RuleError, parse_rule
from tactful.exceptions import InvalidConfig

__all__ = [
    "STATE_FIELDS",
    "ConfigError",
    "Settings",
    "config_file",
    "load_settings",
    "settings_from_mapping",
    "settings_from_toml",
    "starter_config_text",
]

CONFIG_ENV = "TACTFUL_CONFIG"
DEFAULT_PATH = "tactful.toml"
MASK = "********"

Loc = tuple[str | int, ...]

TABLES: dict[str, type[BaseModel]] = {
    "store": StoreSettings,
    "zendesk": ZendeskSettings,
    "identity": IdentitySettings,
    "csat": CsatSettings,
    "consent": ConsentSettings,
    "privacy": PrivacySettings,
    "api": ApiSettings,
    "engine": EngineSettings,
    "delivery": DeliverySettings,
    "reason_model": ReasonModelSettings,
}
ARRAYS: dict[str, type[BaseModel]] = {
    "reasons": ReasonSettings,
    "states": StateSettings,
    "segments": SegmentSettings,
    "destinations": DestinationSettings,
    "alert_channels": AlertChannelSettings,
    "alerts": AlertSettings,
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)(@)")


class ConfigError(InvalidConfig):
    """Invalid configuration; ``errors`` lists every problem found, one line each."""

    def __init__(self, errors: list[str], source: str = "<memory>") -> None:
        super().__init__(errors)
        self.errors = errors
        self.source = source

    def __str__(self) -> str:
        n = len(self.errors)
        head = f"{n} configuration error{'s' if n != 1 else ''} in {self.source}:"
        return "\n".join([head, *(f"  - {e}" for e in self.errors)])


class Settings(BaseModel):
    """The validated configuration. Build it with ``load_settings`` or ``settings_from_*``."""

    model_config = ConfigDict(extra="forbid")

    store: StoreSettings = Field(default_factory=StoreSettings)
    zendesk: ZendeskSettings = Field(default_factory=ZendeskSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    csat: CsatSettings = Field(default_factory=CsatSettings)
    reasons: list[ReasonSettings] = []
    states: list[StateSettings] = []
    segments: list[SegmentSettings] = []
    destinations: list[DestinationSettings] = []
    alert_channels: list[AlertChannelSettings] = []
    alerts: list[AlertSettings] = []
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    reason_model: ReasonModelSettings = Field(default_factory=ReasonModelSettings)
    source: str = "<memory>"
    _classifier: ReasonClassifier | None = PrivateAttr(default=None)

    @property
    def compiled_states(self) -> list[Rule]:
        """The ``[[states]]`` rules in order; the first that holds is ``support_state``."""
        return [s.rule for s in self.states]

    @property
    def compiled_segments(self) -> list[Rule]:
        return [s.rule for s in self.segments]

    def reason_classifier(self) -> ReasonClassifier:
        """The ``[[reasons]]`` mapping, compiled once."""
        if self._classifier is None:
            self._classifier = ReasonClassifier([r.to_rule() for r in self.reasons])
        return self._classifier

    def segment(self, name: str) -> SegmentSettings | None:
        return next((s for s in self.segments if s.name == name), None)

    def destination(self, name: str) -> DestinationSettings | None:
        return next((d for d in self.destinations if d.name == name), None)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data for display, with every secret masked."""
        data = self.model_dump(mode="json")
        data["store"]["url"] = mask_url(self.store.url)
        for section, key in (("zendesk", "api_token"), ("zendesk", "webhook_secret")):
            data[section][key] = MASK if data[section][key] else data[section][key]
        data["api"]["token"] = MASK if self.api.token else None
        data["api"]["dashboard_password"] = MASK if self.api.dashboard_password else None
        for seg, out in zip(self.segments, data["segments"], strict=True):
            out["cooldown"] = format_duration(seg.cooldown) if seg.cooldown else None
        for config, dest in zip(self.destinations, data["destinations"], strict=True):
            for key, value in dest["settings"].items():
                if (key in config.secret_keys or SECRET_KEY.search(key)) and value:
                    dest["settings"][key] = MASK
                elif isinstance(value, str):
                    dest["settings"][key] = mask_url(value)
        data["alert_channels"] = [c.masked() for c in self.alert_channels]
        return data


def mask_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs."""
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", url)


def format_duration(value: timedelta) -> str:
    """``timedelta(hours=24)`` -> ``"1d"``: the largest exact unit of the rules language."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def starter_config_text() -> str:
    """The commented starter ``tactful.toml`` that ``tactful init`` writes."""
    return resources.files("tactful").joinpath("templates/tactful.toml").read_text("utf-8")


def config_file(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> str | Path | None:
    """The file ``load_settings(path)`` reads: ``path``, else ``$TACTFUL_CONFIG``, else
    ``./tactful.toml`` if it exists; None: none, the built-in defaults."""
    if path is not None:
        return path
    env = os.environ if environ is None else environ
    return env.get(CONFIG_ENV) or (DEFAULT_PATH if Path(DEFAULT_PATH).is_file() else None)


def load_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load ``path``, else ``$TACTFUL_CONFIG``, else ``./tactful.toml``, else defaults."""
    env = os.environ if environ is None else environ
    path = config_file(path, environ=env)
    if path is None:
        return settings_from_mapping({}, environ=env, source="<defaults>")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"], source) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{source}: cannot read: {e}"], source) from None
    return settings_from_toml(text, environ=env, source=source)


def settings_from_toml(
    text: str, *, environ: Mapping[str, str] | None = None, source: str = "<text>"
) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{source}: invalid TOML: {e}"], source) from None
    return settings_from_mapping(data, environ=environ, source=source)


def settings_from_mapping(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source: str = "<memory>"
) -> Settings:
    """Validate already-parsed TOML data; raise ``ConfigError`` with every problem."""
    return _Builder(data, os.environ if environ is None else environ, source).build()


class _Builder:
    def __init__(self, data: Mapping[str, Any], environ: Mapping[str, str], source: str):
        self.raw = data
        self.source = source
        self.errors: list[str] = []
        self.env_failed: list[Loc] = []
        self.env_errors: list[tuple[Loc, str]] = []
        self.data = self._resolve(data, (), environ)

    # --- errors -------------------------------------------------------------------------

    def add(self, loc: Loc, message: str) -> None:
        """Record a problem at ``loc``, unless it follows from an unresolved env: value."""
        if any(loc[: len(failed)] == failed for failed in self.env_failed):
            return
        self.errors.append(f"{self.where(loc)}: {message}")

    def where(self, loc: Loc) -> str:
        out, node = "", cast(Any, self.raw)
        for part in loc:
            if isinstance(part, int):
                out += f"[{part}]"
                node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
                if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                    out += f" ({node['name']})"
            elif part != "[key]":
                out += f".{part}" if out else part
                node = node.get(part) if isinstance(node, Mapping) else None
        return out or "<top level>"

    # --- env: ---------------------------------------------------------------------------

    def _resolve(self, value: Any, loc: Loc, environ: Mapping[str, str]) -> Any:
        if isinstance(value, Mapping):
            return {k: self._resolve(v, (*loc, k), environ) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, (*loc, i), environ) for i, v in enumerate(value)]
        if not isinstance(value, str) or not value.startswith("env:"):
            return value
        name = value[4:]
        if not _ENV_NAME.fullmatch(name):
            problem = f"invalid environment reference {value!r}: use env:NAME"
        elif name not in environ:
            problem = f"environment variable {name} is not set"
        elif not environ[name].strip():
            problem = f"environment variable {name} is empty"
        else:
            return environ[name].strip()
        self.env_errors.append((loc, problem))
        return value

    # --- validation ---------------------------------------------------------------------

    def build(self) -> Settings:
        for loc, problem in self.env_errors:
            self.add(loc, problem)
        self.env_failed = [loc for loc, _ in self.env_errors]
        if not isinstance(self.data, Mapping):
            raise ConfigError(["<top level>: must be a table"], self.source)
        parts: dict[str, Any] = {}
        for key in self.data:
            if key not in TABLES and key not in ARRAYS:
                close = difflib.get_close_matches(key, [*TABLES, *ARRAYS], 1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.add((key,), f"unknown section{hint}")
        for key, model in TABLES.items():
            value = self.data.get(key, {})
            if not isinstance(value, Mapping):
                self.add((key,), f"must be a table ([{key}])")
            elif (item := self.validate(model, value, (key,))) is not None:
                parts[key] = item
        for key, model in ARRAYS.items():
            value = self.data.get(key, [])
            if not isinstance(value, list):
                self.add((key,), f"must be an array of tables ([[{key}]])")
                continue
            items: dict[int, Any] = {}
            for i, entry in enumerate(value):
                if not isinstance(entry, Mapping):
                    self.add((key, i), f"must be a table ([[{key}]])")
                elif (item := self.validate(model, entry, (key, i))) is not None:
                    items[i] = item
            parts[key] = list(items.values())
            self.check_unique_names(key, value)
            if key in ("states", "segments"):
                self.compile_rules(key, value, items)
            elif key == "destinations":
                self.check_destinations(items)
            elif key in ("alerts", "alert_channels"):
                self.check_alerts(key, items)
        if self.errors:
            raise ConfigError(self.errors, self.source)
        return Settings(**parts, source=self.source)

    def validate(self, model: type[BaseModel], value: Mapping[str, Any], loc: Loc) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self.add((*loc, *err["loc"]), _message(err, model))
            return None

    def check_unique_names(self, key: str, entries: list[Any]) -> None:
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                first = self.where((key, seen[name]))
                self.add((key, i, "name"), f"duplicate name {name!r} (first used by {first})")
            else:
                seen[name] = i

    def compile_rules(self, key: str, entries: list[Any], items: dict[int, Any]) -> None:
        for i, entry in enumerate(entries):
            when = entry.get("when") if isinstance(entry, Mapping) else None
            if not isinstance(when, str):
                continue  # missing or mistyped: reported by the model
            name = entry.get("name")
            name = name if isinstance(name, str) else f"{key}[{i}]"
            try:
                rule = parse_rule(when, name=name, fields=STATE_FIELDS)
                if key == "states" and "support_state" in rule.fields_used:
                    parse_rule(when, name=name, fields=STATE_RULE_FIELDS)  # raises, with position
            except RuleError as e:
                message = e.message
                if key == "states" and re.search(r"\bsupport_state\b", message):
                    message = "a state rule cannot use support_state (the states compute it)"
                self.add((key, i, "when"), f"{message} at line {e.line}, column {e.column}")
                continue
            if i in items:
                items[i]._rule = rule

    def check_destinations(self, items: dict[int, DestinationSettings]) -> None:
        raw_segments = self.data.get("segments", [])
        segments = sorted(
            {s["name"] for s in raw_segments if isinstance(s, Mapping) and "name" in s}
            if isinstance(raw_segments, list)
            else ()
        )
        for i, dest in items.items():
            for key, message in dest.problems():
                self.add(("destinations", i, key), message)
            key = "segment" if dest.segment is not None else "segments"
            for name in dest.segment_names or []:
                if name not in segments:
                    known = ", ".join(map(str, segments)) or "none"
                    self.add(
                        ("destinations", i, key), f"unknown segment {name!r} (defined: {known})"
                    )

    def check_alerts(self, key: str, items: dict[int, Any]) -> None:
        """Each entry's own keys (its ``when`` / ``type``), and the names a rule refers to."""
        for i, entry in items.items():
            for sub, message in entry.problems():
                self.add((key, i, sub), message)
        if key != "alerts":
            return
        for i, rule in items.items():
            for ref, pool in (("notify", "alert_channels"), ("destinations", "destinations")):
                known = self._names(pool)
                for name in getattr(rule, ref) or []:
                    if name not in known:
                        shown = ", ".join(sorted(known)) or "none"
                        self.add((key, i, ref), f"unknown {pool[:-1]} {name!r} (defined: {shown})")
            watched = rule.params.get("segments")
            if rule.when == "segment_size" and isinstance(watched, list):
                known = self._names("segments")
                for name in watched:
                    if name not in known:
                        shown = ", ".join(sorted(known)) or "none"
                        self.add(
                            (key, i, "segments"), f"unknown segment {name!r} (defined: {shown})"
                        )

    def _names(self, key: str) -> set[str]:
        raw = self.data.get(key, [])
        entries = raw if isinstance(raw, list) else []
        return {
            e["name"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("name"), str)
        }


def _message(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind, msg, loc = err["type"], str(err["msg"]), tuple(err["loc"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), 1)
        return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    if loc and SECRET_KEY.search(str(loc[-1])):
        return msg
    shown = repr(err.get("input"))
    return f"{msg}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"

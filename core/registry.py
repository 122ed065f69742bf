"""Plugin discovery, failure isolation and the per-kind component registries.

Every plugin, built-in or not, is found through the entry-point group ``adamllm``. Each entry point
is loaded on its own: a broken third-party plugin is recorded as failed (one warning line) and the
rest still load; strict mode turns that into an error. Built-in failures always raise.

Built-ins load first. A third-party plugin never breaks them: one whose entry-point name, or one of
whose component names, is already taken is marked failed (the error names both plugins and both
distributions) and contributes nothing; the block and allow lists are applied before any such check,
so a disabled plugin is never even compared. Two built-ins clashing is a bug and raises.
"""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .specs import KINDS, SPEC_TYPES, ComponentSpec

GROUP = "adamllm"
BUILTIN_DISTRIBUTION = "adamllm"

ENV_STRICT = "ADAMLLM_STRICT_PLUGINS"
ENV_LOAD = "ADAMLLM_LOAD_PLUGINS"
ENV_DISABLE = "ADAMLLM_DISABLE_PLUGINS"


class PluginError(Exception):
    """A plugin could not be loaded or contributed an invalid component."""


class DuplicateComponentError(PluginError):
    pass


class UnknownComponentError(PluginError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class PluginInfo:
    """What ``adamllm plugins list`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    status: str = "active"  # active | disabled | failed
    error: str | None = None
    builtin: bool = False
    module: str = ""
    components: dict[str, list[str]] = field(default_factory=dict)
    #: Domain name -> its benchmarks and image-caption sources (what ``plugins list`` shows of a domain).
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    traceback: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "builtin": self.builtin,
            "module": self.module,
            "components": {k: v for k, v in self.components.items() if v},
            **({"domains": self.domains} if self.domains else {}),
        }


@dataclass(frozen=True)
class Registered:
    """A component spec together with the plugin that provided it."""

    spec: ComponentSpec
    plugin: PluginInfo

    @property
    def provider(self) -> str:
        return f"{self.plugin.distribution} {self.plugin.version}"


def _env_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads plugins once and keeps a registry of components per kind.

    ``load_entrypoints=False`` gives an empty manager for tests (see ``adamllm.testing``).
    ``allow``/``block`` default to ``ADAMLLM_LOAD_PLUGINS``/``ADAMLLM_DISABLE_PLUGINS``; the
    allow-list applies to third-party plugins (built-ins always load), the block-list to all.
    """

    def __init__(
        self,
        *,
        load_entrypoints: bool = True,
        strict: bool | None = None,
        allow: Iterable[str] | None = None,
        block: Iterable[str] | None = None,
        no_plugins: bool = False,
        warn=None,
    ) -> None:
        env = os.environ
        self.strict = _truthy(env.get(ENV_STRICT)) if strict is None else strict
        self.allow = set(allow) if allow is not None else _env_list(env.get(ENV_LOAD))
        if no_plugins:
            self.allow = set()
        self.block = set(block) if block is not None else (_env_list(env.get(ENV_DISABLE)) or set())
        self._warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, dict[str, Registered]] | None = None
        if load_entrypoints:
            self.load_entrypoints()

    # -- loading -------------------------------------------------------------------------
    def load_entrypoints(self) -> None:
        def dist_of(ep) -> str:
            return ep.dist.name if ep.dist is not None else "?"

        # built-ins first, so that a third-party plugin can never take a built-in's name
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: (dist_of(e) != BUILTIN_DISTRIBUTION, e.name)):
            dist = dist_of(ep)
            version = ep.dist.version if ep.dist is not None else "?"
            builtin = dist == BUILTIN_DISTRIBUTION
            info = PluginInfo(ep.name, dist, version, builtin=builtin, module=ep.value)
            key = self._key(ep.name, dist)
            self.plugins[key] = info
            if self._is_disabled(info):
                info.status = "disabled"
                continue
            clash = next((other for other in self.plugins.values()
                          if other is not info and other.name == ep.name and other.status == "active"), None)
            if clash is not None:
                exc = PluginError(
                    f"two plugins are named {ep.name!r}: plugin {clash.name!r} (distribution {clash.distribution} "
                    f"{clash.version}) and plugin {ep.name!r} (distribution {dist} {version})"
                )
                if clash.builtin and builtin:
                    raise exc
                self._fail(info, exc)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._fail(info, exc)
                continue
            self._register(module, info, key)

    def _key(self, name: str, distribution: str) -> str:
        """The plugin's key in ``plugins`` (and its pluggy name): its name, made unique when two
        distributions use the same one."""
        key, n = name, 1
        while key in self.plugins:
            n += 1
            key = f"{name} ({distribution})" if n == 2 else f"{name} ({distribution} #{n})"
        return key

    def _is_disabled(self, info: PluginInfo) -> bool:
        if info.name in self.block or info.distribution in self.block:
            return True
        if info.builtin or self.allow is None:
            return False
        return info.name not in self.allow and info.distribution not in self.allow

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status, info.error = "failed", _describe(exc)
        info.traceback = "".join(traceback.format_exception(exc))
        if info.builtin or self.strict:
            error = type(exc) if isinstance(exc, PluginError) else PluginError
            raise error(
                f"plugin {info.name!r} ({info.distribution} {info.version}) failed to load: {info.error}"
            ) from exc
        shared = sum(other.name == info.name for other in self.plugins.values()) > 1
        self._warn(
            f"plugin {info.name!r} ({info.distribution} {info.version}) failed to load: {info.error} "
            f"(skip it with {ENV_DISABLE}={info.distribution if shared else info.name}; -v shows the traceback)"
        )

    def _register(self, plugin: ModuleType | object, info: PluginInfo, key: str | None = None) -> None:
        try:
            self.pm.register(plugin, name=key or info.name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(info, exc)
        self._registries = None

    def register(
        self,
        plugin: ModuleType | object,
        name: str | None = None,
        *,
        distribution: str = "local",
        version: str = "0",
    ) -> PluginInfo:
        """Register an in-process plugin (tests, notebooks); same checks as entry points."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.plugins:
            raise PluginError(f"a plugin named {name!r} is already registered")
        info = PluginInfo(name, distribution, version, module=getattr(plugin, "__name__", ""))
        self.plugins[name] = info
        self._register(plugin, info)
        return info

    def unregister(self, name: str) -> None:
        self.plugins.pop(name)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self._registries = None

    # -- registries ----------------------------------------------------------------------
    @property
    def registries(self) -> dict[str, dict[str, Registered]]:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def _collect(self) -> dict[str, dict[str, Registered]]:
        """Every active plugin's components. A third-party plugin that fails here (its hook raises,
        returns the wrong records, or reuses a taken name) is marked failed and the collection
        starts over without it, so a failed plugin contributes nothing."""
        while True:
            registries = self._collect_once()
            if registries is not None:
                return registries

    def _collect_once(self) -> dict[str, dict[str, Registered]] | None:
        registries: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        for info in self.plugins.values():
            info.components = {}
            info.domains = {}
        for kind in KINDS:
            hook = getattr(self.pm.hook, f"adamllm_{kind}s")
            for impl in hook.get_hookimpls():  # registration order
                info = self.plugins[impl.plugin_name]
                if info.status != "active":
                    continue
                try:
                    specs = list(impl.function() or [])
                    for spec in specs:
                        if not isinstance(spec, SPEC_TYPES[kind]):
                            raise PluginError(
                                f"adamllm_{kind}s returned {type(spec).__name__}, "
                                f"expected {SPEC_TYPES[kind].__name__}"
                            )
                except Exception as exc:  # noqa: BLE001
                    self._fail(info, exc)
                    return None
                for spec in specs:
                    previous = registries[kind].get(spec.name)
                    if previous is not None:
                        exc = DuplicateComponentError(
                            f"{kind} {spec.name!r} is registered twice: by plugin "
                            f"{previous.plugin.name!r} (distribution {previous.plugin.distribution}) "
                            f"and by plugin {info.name!r} (distribution {info.distribution})"
                        )
                        # the later third-party plugin gives way (a built-in always wins)
                        loser = info if not info.builtin else previous.plugin
                        if loser.builtin:
                            raise exc
                        self._fail(loser, exc)
                        return None
                    registries[kind][spec.name] = Registered(spec, info)
                    info.components.setdefault(kind, []).append(spec.name)
                    if kind == "domain":
                        info.domains[spec.name] = {
                            "benchmarks": list(spec.benchmarks),
                            "sources": [{"name": s.name, "format": s.format, "location": s.location}
                                        for s in spec.sources],
                        }
        return registries

    def components(self, kind: str) -> dict[str, Registered]:
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        return self.registries[kind]

    def get(self, kind: str, name: str) -> Registered:
        registry = self.components(kind)
        if name in registry:
            return registry[name]
        installed = ", ".join(sorted(registry)) or "none"
        message = f"unknown {kind} {name!r}; installed {kind}s: {installed}"
        failed = [i for i in self.plugins.values() if i.status == "failed"]
        if failed:
            message += "; plugins that failed to load: " + "; ".join(
                f"{i.name} ({i.distribution}): {i.error}" for i in failed
            )
        disabled = [i.name for i in self.plugins.values() if i.status == "disabled"]
        if disabled:
            message += f"; disabled plugins: {', '.join(disabled)} (see {ENV_LOAD}/{ENV_DISABLE})"
        raise UnknownComponentError(message)

    def spec(self, kind: str, name: str) -> ComponentSpec:
        return self.get(kind, name).spec

    def failed(self) -> list[PluginInfo]:
        return [i for i in self.plugins.values() if i.status == "failed"]

    def blame(self, exc: BaseException) -> tuple[PluginInfo, Registered | None] | None:
        """The third-party plugin (and its component, when known) an error came from, or None.

        Read from the traceback, innermost frame first (then the exceptions it was raised from): a
        frame running a third-party component or spec built by ``ComponentSpec.build``, or a frame
        in a third-party plugin's package. An error adamllm raised outside plugin code is adamllm's."""
        if self._registries is None:
            return None
        third = [r for registry in self._registries.values() for r in registry.values() if not r.plugin.builtin]
        packages: dict[str, PluginInfo] = {}
        for info in self.plugins.values():
            if not info.builtin and info.status != "disabled" and info.module:
                packages.setdefault(info.module.split(":")[0].split(".")[0], info)
        for registered in third:
            for target in (registered.spec.factory, registered.spec.config):
                module = target.partition(":")[0] if isinstance(target, str) else getattr(target, "__module__", None)
                if module:
                    packages.setdefault(module.split(".")[0], registered.plugin)
        for name in ("adamllm", "builtins"):
            packages.pop(name, None)
        by_spec = {id(r.spec): r for r in third}
        link: BaseException | None = exc
        while link is not None:
            found = _blame_frames(link, packages, by_spec, third, from_adamllm=link is exc)
            if found is not None:
                return found
            link = link.__cause__
        return None


def _blame_frames(exc: BaseException, packages: dict[str, PluginInfo], by_spec: dict[int, Registered],
                  third: list[Registered], from_adamllm: bool) -> tuple[PluginInfo, Registered | None] | None:
    from .errors import is_adamllm_error
    from .specs import BUILT, ComponentSpec

    def registered(value: Any) -> Registered | None:
        try:
            spec = value if isinstance(value, ComponentSpec) else BUILT.get(value)
        except TypeError:  # unhashable
            return None
        return by_spec.get(id(spec)) if spec is not None else None

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    exact: tuple[int, Registered] | None = None
    hit: tuple[int, PluginInfo, str] | None = None
    for depth, frame in enumerate(reversed(frames)):
        if exact is None:
            found = registered(frame.f_locals.get("self")) or registered(frame.f_locals.get("component"))
            exact = (depth, found) if found is not None else None
        module = str(frame.f_globals.get("__name__", ""))
        if hit is None and module.split(".")[0] in packages:
            hit = (depth, packages[module.split(".")[0]], module)
    if exact is None and hit is None:
        return None
    raised_there = (exact is not None and exact[0] == 0) or (hit is not None and hit[0] == 0)
    if from_adamllm and is_adamllm_error(exc) and not raised_there:
        return None  # adamllm's own error, raised in code the plugin called: its message says it all
    if exact is not None:
        return exact[1].plugin, exact[1]
    _, info, module = hit
    mine = [r for r in third if r.plugin is info]
    same_module = [r for r in mine if isinstance(r.spec.factory, str) and r.spec.factory.partition(":")[0] == module]
    pick = same_module if len(same_module) == 1 else mine
    return info, pick[0] if len(pick) == 1 else None


_default: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide manager for library use (the CLI builds its own from its flags)."""
    global _default
    if _default is None:
        _default = PluginManager()
    return _default

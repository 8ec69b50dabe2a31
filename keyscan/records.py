"""``@dataclass`` for the classes every run imports, without importing ``dataclasses``.

``dataclasses`` pulls ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``, ``linecache``)
and compiles each class's methods when the class is defined: about 5.6 ms of imports and
0.2-0.4 ms per class, paid by every pre-commit hook run although most classes (``Finding``,
``Location``, ``Match``...) are never instantiated on a clean run.

``dataclass`` here builds the same class as ``dataclasses.dataclass`` for the subset keyscan
uses (``frozen``; ``field(default=, default_factory=, repr=, compare=)``; single inheritance
between such classes): the same ``__init__`` (defaults, factories, ``__post_init__``),
``__repr__``, ``__eq__``, ``__hash__``, frozen ``__setattr__``/``__delattr__`` (raising
``dataclasses.FrozenInstanceError``), ``__match_args__``, class attributes and ``__doc__``.
The methods are compiled on a class's first use (one ``exec`` per class, as dataclasses
compiles them, but only for the classes a run instantiates). ``__dataclass_fields__`` and
``__dataclass_params__`` are built by ``dataclasses`` itself the first time something asks
(``dataclasses.fields``, ``replace``, ``asdict``, ``is_dataclass``): the very objects a real
dataclass would carry, so the public types stay dataclasses for every caller.
``tests/test_import_cost.py`` compares each class with the real dataclass of the same body.

For type checkers the names are those of ``dataclasses`` (mypy's dataclass plugin applies).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

_MISSING = type("_MISSING_TYPE", (), {"__repr__": lambda self: "<MISSING>"})()


class _FieldSpec:
    """What ``field()`` returns in a class body (turned into a real ``dataclasses.Field``
    only when ``__dataclass_fields__`` is asked for)."""

    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool):
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def _field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    repr: bool = True,
    compare: bool = True,
) -> Any:
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _FieldSpec(default, default_factory, repr, compare)


class _Record:
    """What the decorator knows about one class: its fields, in order, with their specs."""

    __slots__ = ("annotations", "base", "built", "cls", "fields", "frozen", "own", "precompiled")
    fields: dict[str, _FieldSpec]
    annotations: dict[str, Any]

    def __init__(self, cls: type, frozen: bool, base: _Record | None) -> None:
        self.cls = cls
        self.frozen = frozen
        self.base = base
        self.built = False
        own: dict[str, _FieldSpec] = {}
        # The class body's own annotations (inspect.get_annotations would import inspect).
        annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in annotations.items():
            if isinstance(annotation, str) and (
                annotation.startswith(("ClassVar", "typing.ClassVar", "InitVar"))
                or annotation.startswith("dataclasses.")
            ):
                raise TypeError(f"{cls.__qualname__}.{name}: not supported by keyscan.records")
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _FieldSpec):
                spec = value
                if spec.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, spec.default)
            else:
                spec = _FieldSpec(value, _MISSING, True, True)
            if isinstance(spec.default, (list, dict, set)):
                raise ValueError(
                    f"mutable default {type(spec.default)} for field {name} is not allowed:"
                    " use default_factory"
                )
            own[name] = spec
        fields = dict(base.fields) if base is not None else {}
        fields.update(own)
        seen_default = False
        for name, spec in fields.items():
            has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
            if seen_default and not has_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            seen_default = seen_default or has_default
        self.fields = fields
        self.own = own
        self.annotations = {
            **(base.annotations if base is not None else {}),
            **{name: annotations[name] for name in own},
        }

    def source(self) -> tuple[str, dict[str, Any]]:
        """The methods' source, as dataclasses generates it, and the names it refers to."""
        globs: dict[str, Any] = {
            "__dataclass_builtins_object__": object,
            "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY,
        }
        params, body = [], []
        for name, spec in self.fields.items():
            if spec.default_factory is not _MISSING:
                globs[f"_dflt_{name}"] = spec.default_factory
                params.append(f"{name}=_HAS_DEFAULT_FACTORY")
                value = f"_dflt_{name}() if {name} is _HAS_DEFAULT_FACTORY else {name}"
            elif spec.default is not _MISSING:
                globs[f"_dflt_{name}"] = spec.default
                params.append(f"{name}=_dflt_{name}")
                value = name
            else:
                params.append(name)
                value = name
            if self.frozen:
                body.append(f"__dataclass_builtins_object__.__setattr__(self,{name!r},{value})")
            else:
                body.append(f"self.{name}={value}")
        if "__post_init__" in _all_attributes(self.cls):
            body.append("self.__post_init__()")
        shown = [n for n, s in self.fields.items() if s.repr]
        compared = [n for n, s in self.fields.items() if s.compare]

        def tuple_of(who: str) -> str:
            return "(" + "".join(f"{who}.{n}," for n in compared) + ")"

        source = [
            f"def __init__(self, {', '.join(params)}):",
            *(f"  {line}" for line in body or ["pass"]),
            "def __repr__(self):",
            '  return self.__class__.__qualname__ + f"('
            + ", ".join(f"{n}={{self.{n}!r}}" for n in shown)
            + ')"',
            "def __eq__(self, other):",
            "  if other.__class__ is self.__class__:",
            f"    return {tuple_of('self')}=={tuple_of('other')}",
            "  return NotImplemented",
            "def __hash__(self):",
            f"  return hash({tuple_of('self')})",
        ]
        return "\n".join(source), globs

    def build(self) -> None:
        """Put ``__init__``, ``__repr__``, ``__eq__`` (and ``__hash__``) into the class, as
        dataclasses generates them: from the byte-compiled ``keyscan._records_code`` when its
        copy of the source is this very source, else compiled here."""
        if self.built:
            return
        cls = self.cls
        source, globs = self.source()
        made = _precompiled(_code_name(cls), source, globs)
        self.precompiled = made is not None
        if made is None:
            made = {}
            exec(source, globs, made)
        made["__repr__"] = _recursive_repr(made["__repr__"])
        made["__init__"].__annotations__ = {
            **{name: self.annotations[name] for name in self.fields},
            "return": None,
        }
        for name in ("__init__", "__repr__", "__eq__", "__hash__"):
            stub = _STUBS.get((cls, name))
            if stub is not None and cls.__dict__.get(name) is stub:
                function = made[name]
                function.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, function)
        self.built = True

    def dataclass_attributes(self) -> None:
        """``__dataclass_fields__`` and ``__dataclass_params__``, made by dataclasses itself
        from a class with the same fields."""
        import dataclasses

        cls = self.cls
        shadow_bases: tuple[type, ...] = ()
        if self.base is not None:
            self.base.dataclass_attributes()
            shadow_bases = (_shadow(self.base),)
        namespace: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__annotations__": {name: self.annotations[name] for name in self.own},
        }
        for name, spec in self.own.items():
            namespace[name] = dataclasses.field(
                default=spec.default if spec.default is not _MISSING else dataclasses.MISSING,
                default_factory=(
                    spec.default_factory
                    if spec.default_factory is not _MISSING
                    else dataclasses.MISSING
                ),
                repr=spec.repr,
                compare=spec.compare,
            )
        shadow: type = dataclasses.dataclass(frozen=self.frozen)(
            type(cls.__name__, shadow_bases, namespace)
        )
        _SHADOWS[cls] = shadow
        type.__setattr__(cls, "__dataclass_fields__", vars(shadow)["__dataclass_fields__"])
        type.__setattr__(cls, "__dataclass_params__", vars(shadow)["__dataclass_params__"])


_METHODS = ("__init__", "__repr__", "__eq__", "__hash__")


def _code_name(cls: type) -> str:
    """The name of a class's methods in keyscan._records_code."""
    return "_" + f"{cls.__module__}.{cls.__qualname__}".replace(".", "_")


def _precompiled(name: str, source: str, globs: dict[str, Any]) -> dict[str, Any] | None:
    """The methods from keyscan._records_code (their code byte-compiled at install time, the
    names they refer to passed in), or None if it holds no copy of exactly this source."""
    from keyscan import _records_code

    if _records_code.SOURCES.get(name) != source:
        return None
    functions = getattr(_records_code, name)(**globs)
    return dict(zip(_METHODS, functions, strict=True))


def generated_module(classes: Iterable[type]) -> str:
    """The text of keyscan/_records_code.py for ``classes`` (records)."""
    out = [
        '"""Generated by keyscan.records.generated_module: do not edit. The methods of the',
        "records a run imports, byte-compiled at install time (see keyscan.records); a class",
        'whose source changed is compiled at run time until this file is generated again."""',
        "",
        "# ruff: noqa",
        "# mypy: ignore-errors",
        "",
    ]
    digests = []
    for cls in sorted(classes, key=_code_name):
        record = _RECORDS[cls]
        source, globs = record.source()
        name = _code_name(cls)
        digests.append(f"    {name!r}: {source!r},")
        out.append("")
        out.append(f"def {name}({', '.join(sorted(globs))}):")
        out.extend(f"    {line}" for line in source.split("\n"))
        out.append(f"    return {', '.join(_METHODS)}")
        out.append("")
    out += ["", "SOURCES = {", *digests, "}", ""]
    return "\n".join(out)


_HAS_DEFAULT_FACTORY = type(
    "_HAS_DEFAULT_FACTORY_CLASS", (), {"__repr__": lambda self: "<factory>"}
)()
_RECORDS: dict[type, _Record] = {}
_SHADOWS: dict[type, type] = {}
_STUBS: dict[tuple[type, str], Any] = {}


def _shadow(record: _Record) -> type:
    return _SHADOWS[record.cls]


def _all_attributes(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass)}


def _recursive_repr(function: Any) -> Any:
    """dataclasses' guard: a record that contains itself repr()s as ``...``."""
    import functools

    try:
        from _thread import get_ident
    except ImportError:  # pragma: no cover - every CPython has _thread
        from threading import get_ident
    running: set[tuple[int, int]] = set()

    @functools.wraps(function)
    def wrapper(self: Any) -> str:
        key = id(self), get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            result: str = function(self)
        finally:
            running.discard(key)
        return result

    return wrapper


class _LazyDataclassAttribute:
    """``__dataclass_fields__`` / ``__dataclass_params__`` until something asks for them."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type) -> Any:
        cls = next(klass for klass in owner.__mro__ if klass in _RECORDS)
        _RECORDS[cls].dataclass_attributes()
        return cls.__dict__[self.name]


class _Stub:
    """A method not built yet: whatever asks for it (a call through the type's slot,
    ``cls.__init__``, ``inspect.signature(cls)``) gets the built method, so the stub itself
    is never seen."""

    __slots__ = ("cls", "name")

    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        _RECORDS[self.cls].build()
        return self.cls.__dict__[self.name].__get__(instance, owner)


def _stub(cls: type, name: str) -> Any:
    stub = _STUBS[(cls, name)] = _Stub(cls, name)
    return stub


def _frozen_methods(cls: type, names: frozenset[str]) -> None:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    for function in (__setattr__, __delattr__):
        function.__qualname__ = f"{cls.__qualname__}.{function.__name__}"
        setattr(cls, function.__name__, function)


def _set(cls: type, name: str, value: Any) -> None:
    setattr(cls, name, value)


def _doc(cls: type, record: _Record) -> str:
    """The ``__doc__`` dataclasses gives a class without one: its name and signature."""
    parts = []
    for name, spec in record.fields.items():
        annotation = record.annotations[name]
        text = f"{name}: {annotation!r}"
        if spec.default_factory is not _MISSING:
            text += " = <factory>"
        elif spec.default is not _MISSING:
            text += f" = {spec.default!r}"
        parts.append(text)
    return f"{cls.__name__}({', '.join(parts)})"


def _process(cls: type, frozen: bool) -> type:
    bases = [b for b in cls.__mro__[1:] if b in _RECORDS]
    if any("__dataclass_fields__" in vars(b) and b not in _RECORDS for b in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a real dataclass base is not supported")
    base = _RECORDS[bases[0]] if bases else None
    if base is not None and base.frozen != frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    record = _Record(cls, frozen, base)
    _RECORDS[cls] = record
    own = vars(cls)
    for name in ("__init__", "__repr__", "__eq__"):
        if name not in own:
            setattr(cls, name, _stub(cls, name))
    if "__hash__" not in own or own["__hash__"] is None:
        # eq without frozen: unhashable; eq and frozen: a hash of the compared fields
        # (an explicit __hash__ in the class body is kept, as dataclasses keeps it).
        _set(cls, "__hash__", _stub(cls, "__hash__") if frozen else None)
    if frozen:
        _frozen_methods(cls, frozenset(record.fields))
    _set(cls, "__match_args__", tuple(record.fields))
    for name in ("__dataclass_fields__", "__dataclass_params__"):
        _set(cls, name, _LazyDataclassAttribute(name))
    if cls.__doc__ is None:
        cls.__doc__ = _doc(cls, record)
    return cls


def _dataclass(cls: type | None = None, /, *, frozen: bool = False) -> Any:
    def wrap(cls: type) -> type:
        return _process(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _replace(obj: Any, /, **changes: Any) -> Any:
    """``dataclasses.replace`` (for a record without importing dataclasses)."""
    record = _RECORDS.get(type(obj))
    if record is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)
    for name in record.fields:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)


if TYPE_CHECKING:
    from dataclasses import dataclass, field, replace
else:
    dataclass, field, replace = _dataclass, _field, _replace

__all__ = ["dataclass", "field", "replace"]

"""What the hidden tests see, prepared before the candidate runs (loaded by ``grader.py``).

- The tests arrive compiled and instrumented (``thinkcost.sandbox.instrument``): every call
  result, every comparison operand and every ``assert`` condition goes through the scan, which refuses values that carry an object whose
  class overrides behaviour (``__eq__``, ``__ne__``, ``__hash__``, ``__bool__``, ``__len__``,
  ``__sub__``, ``__class__``, ...) with code that is not the standard library's: the "always-equal" hack (an object equal to everything, an ``int``
  subclass with a lying ``__eq__``, ``unittest.mock.ANY``) is reported instead of passing.
- Every module the tests import is imported now, and the tests get *views*: module objects holding
  the attributes as they were before the candidate ran, so a candidate that patches
  ``math.isclose`` or swaps ``sys.modules['math']`` changes nothing the tests call.
- The tests run with a copy of builtins taken before the candidate ran.
- :func:`check` reports what the candidate changed anyway (builtins, those modules, their classes).

Classes are trusted when they are C types (immutable), or when every dunder they define is
harmless or a standard-library method of that name: a C slot of the class itself, or a function
compiled from a file under the standard library whose qualified name ends in the dunder (the
grader refuses to compile or unmarshal code that merely claims a standard-library file name).
This is checked on the class as it is when the value arrives, so a patched ``Counter.__eq__`` is
caught too. ``unittest.mock`` is never trusted. Known gaps (documented in
:mod:`thinkcost.sandbox.harness`): only containers, instance ``__dict__`` and ``__slots__`` are
searched (at most 100,000 objects per value), and a test that hands the candidate a function it
defined hands over the tests' own globals.
"""

import sys

_HEAP = 1 << 9
_flags = type.__dict__["__flags__"].__get__
_mro = type.__dict__["__mro__"].__get__
_tdict = type.__dict__["__dict__"].__get__
_tname = type.__dict__["__qualname__"].__get__
_ihash = object.__hash__  # identity hash: never runs a metaclass's __hash__
_MISSING = object()
_FUNCTION = type(lambda: None)
_GETSET = type(type.__dict__["__dict__"])
_MEMBER = type(type.__dict__["__basicsize__"])
_SLOTS = (type(object.__init__), type(str.join), type(dict.__dict__["fromkeys"]))
_MODULE = type(sys)
_SCAN_LIMIT = 100_000
SCAN_NAME = "__thinkcost_scan__"  # the name thinkcost.sandbox.instrument wraps values in

_ATOMS = {
    _ihash(t): t
    for t in (
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        bool,
        type(None),
        type(...),
        type(NotImplemented),
        range,
        type,
        _MODULE,
        _FUNCTION,
        type(len),
        type(_ihash),
    )
}
_ATOM_HASHES = frozenset(_ATOMS)
_SEQUENCES = (list, tuple, set, frozenset)

# Dunders that cannot make a value compare, convert or test differently: construction,
# representation for people, pickling/copying and typing metadata.
_HARMLESS = frozenset(
    (
        "__module__",
        "__qualname__",
        "__doc__",
        "__slots__",
        "__annotations__",
        "__init__",
        "__new__",
        "__repr__",
        "__match_args__",
        "__getnewargs__",
        "__getnewargs_ex__",
        "__reduce__",
        "__reduce_ex__",
        "__getstate__",
        "__setstate__",
        "__copy__",
        "__deepcopy__",
        "__init_subclass__",
        "__class_getitem__",
        "__orig_bases__",
        "__parameters__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__post_init__",
        "__set_name__",
        "__classcell__",
        "__firstlineno__",
        "__static_attributes__",
        "__abstractmethods__",
        "__subclasshook__",
        "__del__",
        "__enter__",
        "__exit__",
        "__type_params__",
        "__weakrefoffset__",
    )
)


def _among(cls, classes):
    """`cls in classes` by identity (`in` would call a metaclass's __eq__: candidate code)."""
    return any(other is cls for other in classes)


def _is_dunder(name):
    return type(name) is str and len(name) > 4 and name[:2] == "__" and name[-2:] == "__"


def _identity_get(table, obj):
    for item, value in table.get(_ihash(obj), ()):
        if item is obj:
            return value
    return None


class _Trust:
    """Decides which classes may reach the tests, from the classes' dunders as they are now."""

    def __init__(self, stdlib):
        self.stdlib = stdlib + "/"
        self.mock = stdlib + "/unittest/mock.py"

    def _stdlib_method(self, cls, name, value):
        if _among(type(value), _SLOTS):
            return value.__objclass__ is cls
        if _among(type(value), (staticmethod, classmethod)):
            value = value.__func__
        if type(value) is not _FUNCTION:
            return False
        code = value.__code__
        where = code.co_filename
        return (  # unbound str methods: a str subclass cannot lie about its own contents
            str.startswith(where, self.stdlib)
            and not str.__eq__(where, self.mock)
            and str.endswith(code.co_qualname, "." + name)
        )

    def problem(self, t):
        """'Class.__dunder__' for the first untrusted override in t's MRO, else None."""
        for cls in _mro(t):
            if not _flags(cls) & _HEAP:
                continue
            for name, value in _tdict(cls).items():
                if not _is_dunder(name) or name in _HARMLESS:
                    continue
                if name in ("__dict__", "__weakref__") and type(value) is _GETSET:
                    continue
                if name == "__hash__" and value is None:
                    continue
                if self._stdlib_method(cls, name, value):
                    continue
                return _tname(cls) + "." + name
        return None


def _children(v, t, mro):
    """The objects inside v that the tests could end up comparing, read without running its code."""
    for base in _SEQUENCES:
        if _among(base, mro):
            return list(base.__iter__(v))
    if _among(dict, mro):
        return [*dict.keys(v), *dict.values(v)]
    out = []
    heap = _flags(t) & _HEAP
    for cls in mro:
        d = _tdict(cls)
        desc = d.get("__dict__")
        if type(desc) is _GETSET:
            try:
                inner = desc.__get__(v, t)
            except Exception:
                inner = None
            if type(inner) is dict:
                out.extend(dict.values(inner))
        if heap and _flags(cls) & _HEAP:
            for member in d.values():
                if type(member) is _MEMBER:
                    try:  # noqa: SIM105 (contextlib would cost every child an import)
                        out.append(member.__get__(v, t))
                    except AttributeError:
                        pass
    return out


def _make_scan(trust, refusal, record):
    def scan(value):
        todo = [value]
        seen = 0
        while todo and seen < _SCAN_LIMIT:
            v = todo.pop()
            t = type(v)
            if _ATOMS.get(_ihash(t)) is t:
                continue
            seen += 1
            where = trust.problem(t)
            if where is not None:
                what = (
                    f"a value of type {_tname(t)} reached the tests, and {where} is not the standard "
                    "library's (always-equal objects are refused)"
                )
                record(what)
                raise refusal(what)
            kids = _children(v, t, _mro(t))
            if len(kids) > 8 and set(map(_ihash, map(type, kids))) <= _ATOM_HASHES:
                continue  # all plain values (a long list of ints): checked at C speed
            todo.extend(kids)
        return value

    return scan


# --------------------------------------------------------------------------- modules and builtins


def _snapshot(modules):
    """(name, module, attributes, {class name: class dict}) for every module the tests import."""
    out = []
    for name, module in modules.items():
        attrs = dict(module.__dict__)
        classes = {k: (v, dict(_tdict(v))) for k, v in attrs.items() if type(v) is type and _flags(v) & _HEAP}
        out.append((name, module, attrs, classes))
    return out


def _views(snapshot):
    """Module objects frozen at the snapshot, submodule attributes pointing at their own views."""
    views = {name: _MODULE(name) for name, *_ in snapshot}
    by_module = {}
    for name, module, _attrs, _classes in snapshot:
        by_module.setdefault(_ihash(module), []).append((module, views[name]))
    for name, _module, attrs, _classes in snapshot:
        view = views[name]
        for key, value in attrs.items():
            if type(value) is _MODULE:
                value = _identity_get(by_module, value) or value
            view.__dict__[key] = value
    return views


def _make_import(views, real_import):
    def tests_import(name, globals=None, locals=None, fromlist=(), level=0):
        if not level and type(name) is str:
            if fromlist and name in views:
                return views[name]
            if not fromlist and name in views:
                return views[name.partition(".")[0]]
        return real_import(name, globals, locals, fromlist, level)

    return tests_import


def _changes(snapshot, builtins_dict, pristine, modules_dict):
    """What the candidate changed that the tests rely on, as one line, or None."""
    changed = sorted(k for k, v in pristine.items() if builtins_dict.get(k, _MISSING) is not v)
    if changed:
        return "the candidate replaced builtins: " + ", ".join(str(k) for k in changed[:8])
    for name, module, attrs, classes in snapshot:
        if modules_dict.get(name) is not module:
            return f"the candidate replaced sys.modules[{name!r}]"
        now = module.__dict__
        bad = sorted(k for k, v in attrs.items() if now.get(k, _MISSING) is not v)
        if bad:
            return f"the candidate changed module {name} ({', '.join(bad[:8])})"
        for cname, (cls, before) in classes.items():
            current = _tdict(cls)
            bad = sorted(k for k, v in before.items() if current.get(k, _MISSING) is not v)
            bad += sorted(k for k in current if k not in before)
            if bad:
                return f"the candidate changed {name}.{cname} ({', '.join(str(k) for k in bad[:8])})"
    return None


def prepare(code, imports, pristine, builtins_dict, stdlib, refusal, record):
    """Freeze what the instrumented tests will see; returns the grader's handles. Runs before any candidate code.

    `code`/`imports` come from thinkcost.sandbox.instrument; `pristine` is the builtins copy taken
    at start-up, `builtins_dict` the live builtins dict the candidate may change.
    """
    filename = code.co_filename
    real_import = pristine["__import__"]
    modules = {}
    for name in imports:
        try:
            real_import(name)
        except Exception:
            continue  # the tests will raise the same ImportError themselves
        if type(sys.modules.get(name)) is _MODULE:
            modules[name] = sys.modules[name]
    snapshot = _snapshot(modules)
    test_builtins = dict(pristine)
    test_builtins["__import__"] = _make_import(_views(snapshot), real_import)
    scan = _make_scan(_Trust(stdlib), refusal, record)
    modules_dict = sys.modules

    def namespace(candidate_globals):
        """The tests' globals: the candidate's names, then the tests' own builtins and scan."""
        ns = {k: v for k, v in dict.items(candidate_globals) if type(k) is str}
        ns.update(__builtins__=test_builtins, __name__="__main__", __file__=filename)
        ns[SCAN_NAME] = scan
        return ns

    def check():
        return _changes(snapshot, builtins_dict, pristine, modules_dict)

    return {"code": code, "namespace": namespace, "check": check}

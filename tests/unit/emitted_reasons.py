"""Every reason the operator can put in a `Reconciling` or `Stalled` condition, read from its
source with `ast` (no code runs), so that docs/troubleshooting.md can be checked against it.

A condition is written by a call with a `reconciling=` or `stalled=` keyword whose value is a
`(flag, reason, message)` tuple (`set_conditions`, `Step.outcome`). From each such tuple the
reason expression is traced back until it is a string:

- a literal, an `a if c else b`, an `a or b`;
- a name: a module constant (also imported from another module of the package), a local
  assignment (also unpacked from a tuple a package function returns), or a parameter — then
  every call of that function, anywhere in the package, is followed (`Step.stalled(reason, ...)`
  leads to each `step.stalled("InvalidSpec", ...)`);
- `exc.reason`, for an `exc` caught (`except ProviderError as exc`) or annotated
  (`exc: ProviderError`): the `reason` of every class it can be (the class and its subclasses
  that are raised; an attribute set in `__init__` is traced like a parameter). Where the code
  tests `exc.retryable` (an `if` around it, an `if exc.retryable: return` before it, or the
  tuple's flag), only the classes with that `retryable` count.

Anything else is reported as unresolved, so a reason that the scan cannot follow fails the test
instead of being missed. A flag that is the literal False writes no condition and is skipped.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CONDITIONS = {"reconciling": "Reconciling", "stalled": "Stalled"}

_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Found:
    condition: str  # Reconciling or Stalled
    reason: str
    where: str  # file:line of the string


@dataclass
class _Module:
    name: str  # dotted
    path: Path
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)


@dataclass(frozen=True)
class _Narrowing:
    """What is known about `name.retryable` where an expression is evaluated."""

    name: str
    retryable: bool


class ReasonScan:
    def __init__(self, package: Path, root: Path) -> None:
        self.root = root
        self.modules: dict[str, _Module] = {}
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            module = _Module(name, path, ast.parse(path.read_text(), str(path)))
            for parent in ast.walk(module.tree):
                for child in ast.iter_child_nodes(parent):
                    module.parents[child] = parent
            self.modules[name] = module
        self.functions: dict[str, list[tuple[_Module, _Function]]] = defaultdict(list)
        self.classes: dict[str, list[tuple[_Module, ast.ClassDef]]] = defaultdict(list)
        self.calls: dict[str, list[tuple[_Module, ast.Call]]] = defaultdict(list)
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions[node.name].append((module, node))
                elif isinstance(node, ast.ClassDef):
                    self.classes[node.name].append((module, node))
                elif isinstance(node, ast.Call):
                    callee = _callee_name(node.func)
                    if callee:
                        self.calls[callee].append((module, node))
        self.found: set[Found] = set()
        self.unresolved: list[str] = []
        self._seen: set[tuple[int, int | None, str, _Narrowing | None]] = set()

    # -- entry ------------------------------------------------------------------------------
    def scan(self) -> ReasonScan:
        for callee_calls in list(self.calls.values()):
            for module, call in callee_calls:
                for keyword in call.keywords:
                    if keyword.arg in CONDITIONS:
                        self._condition(module, keyword.value, CONDITIONS[keyword.arg])
        return self

    def reasons(self, condition: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for item in self.found:
            if item.condition == condition:
                out[item.reason].add(item.where)
        return dict(out)

    # -- the (flag, reason, message) tuple --------------------------------------------------
    def _condition(self, module: _Module, value: ast.expr, condition: str) -> None:
        """A `reconciling=` / `stalled=` value: a tuple, or a parameter that carries one."""
        if isinstance(value, ast.Tuple) and len(value.elts) == 3:
            flag = value.elts[0]
            if isinstance(flag, ast.Constant) and flag.value is False:
                return
            self._resolve(module, value.elts[1], condition, _narrowing_of(flag))
            return
        if isinstance(value, ast.Constant) and value.value is None:
            return
        if isinstance(value, ast.Name):
            function = self._function_of(module, value)
            if function is not None and value.id in _parameters(function):
                for caller, argument in self._arguments(function, value.id):
                    self._condition(caller, argument, condition)
                return
            assigned = [
                v
                for v, position in _assignments(function or module.tree, value.id)
                if position is None
            ]
            for tuple_ in assigned:
                self._condition(module, tuple_, condition)
            if assigned:
                return
        self._unresolved(module, value, "a condition that is not a (flag, reason, message) tuple")

    # -- a reason expression ----------------------------------------------------------------
    def _resolve(
        self,
        module: _Module,
        node: ast.expr,
        condition: str,
        narrowing: _Narrowing | None = None,
        index: int | None = None,
    ) -> None:
        key = (id(node), index, condition, narrowing)
        if key in self._seen:
            return
        self._seen.add(key)
        if index is not None:
            if isinstance(node, ast.Tuple) and index < len(node.elts):
                self._resolve(module, node.elts[index], condition, narrowing)
            elif isinstance(node, ast.Call):
                self._returns(module, node, condition, index)
            elif isinstance(node, ast.Name):
                self._name(module, node, condition, narrowing, index)
            else:
                self._unresolved(module, node, f"element {index} of this")
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            where = f"{node.lineno}"
            self.found.add(Found(condition, node.value, f"{self._relative(module)}:{where}"))
        elif isinstance(node, ast.IfExp):
            self._resolve(module, node.body, condition, narrowing)
            self._resolve(module, node.orelse, condition, narrowing)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._resolve(module, value, condition, narrowing)
        elif isinstance(node, ast.Name):
            self._name(module, node, condition, narrowing, None)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            self._attribute(module, node, condition, narrowing)
        else:
            self._unresolved(module, node, "a reason")

    def _name(
        self,
        module: _Module,
        node: ast.Name,
        condition: str,
        narrowing: _Narrowing | None,
        index: int | None,
    ) -> None:
        scope: ast.AST | None = self._function_of(module, node)
        while isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.id in _parameters(scope):
                for caller, argument in self._arguments(scope, node.id):
                    self._resolve(caller, argument, condition, None, index)
                return
            values = list(_assignments(scope, node.id))
            if values:
                for value, position in values:
                    self._resolve(module, value, condition, narrowing, _index(position, index))
                return
            scope = self._function_of(module, scope)
        values = list(_assignments(module.tree, node.id))
        if values:
            for value, position in values:
                self._resolve(module, value, condition, narrowing, _index(position, index))
            return
        source = self._imported_from(module, node.id)
        if source is not None:
            self._name(source, ast.Name(node.id), condition, narrowing, index)
            return
        self._unresolved(module, node, f"the name {node.id!r}")

    def _attribute(
        self, module: _Module, node: ast.Attribute, condition: str, narrowing: _Narrowing | None
    ) -> None:
        assert isinstance(node.value, ast.Name)
        holder = node.value.id
        classes = self._classes_of(module, node.value)
        if classes is None:
            self._unresolved(module, node, f"{holder}.{node.attr} (its class is not known)")
            return
        retryable = self._retryable_at(module, node, holder)
        if narrowing is not None and narrowing.name == holder:
            retryable = narrowing.retryable
        for name in self._raised_subclasses(classes):
            if retryable is not None and self._class_attribute(name, "retryable") != retryable:
                continue
            value = self._class_attribute_node(name, node.attr)
            if value is not None:
                self._resolve(value[0], value[1], condition)
                continue
            assigned = list(self._instance_assignments(name, node.attr))
            if not assigned:
                self._unresolved(module, node, f"{name}.{node.attr}")
            for owner, expr in assigned:
                self._resolve(owner, expr, condition)

    def _returns(self, module: _Module, call: ast.Call, condition: str, index: int) -> None:
        callee = _callee_name(call.func)
        targets = self.functions.get(callee or "", [])
        if not targets:
            self._unresolved(module, call, "the result of a call outside the package")
        for owner, function in targets:
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Return)
                    and node.value is not None
                    and self._function_of(owner, node) is function
                ):
                    self._resolve(owner, node.value, condition, None, index)

    # -- functions and their callers --------------------------------------------------------
    def _arguments(self, function: _Function, parameter: str) -> Iterator[tuple[_Module, ast.expr]]:
        """What every call of `function` (by name, anywhere in the package) passes for
        `parameter`; its default too."""
        names = _parameters(function)
        position = names.index(parameter)
        owner_module, owner = self._owner(function)
        is_method = owner is not None and not _is_static(function)
        callee = owner.name if function.name == "__init__" and owner is not None else function.name
        if is_method:
            position -= 1  # self / cls
        callers = self.calls.get(callee or "", [])
        if not callers:
            self._unresolved(owner_module, function, f"{function.name}: no caller of it found")
        for module, call in callers:
            if isinstance(call.func, ast.Name) and is_method and function.name != "__init__":
                continue  # a function of that name, not this method
            positional = [a for a in call.args if not isinstance(a, ast.Starred)]
            if 0 <= position < len(positional):
                yield module, positional[position]
            for keyword in call.keywords:
                if keyword.arg == parameter:
                    yield module, keyword.value
        default = _default(function, parameter)
        if default is not None:
            yield owner_module, default

    def _owner(self, function: _Function) -> tuple[_Module, ast.ClassDef | None]:
        for module in self.modules.values():
            if function in module.parents:
                parent = module.parents[function]
                return module, parent if isinstance(parent, ast.ClassDef) else None
        raise AssertionError(function.name)

    def _function_of(self, module: _Module, node: ast.AST) -> _Function | None:
        current = module.parents.get(node)
        while current is not None and not isinstance(
            current, ast.FunctionDef | ast.AsyncFunctionDef
        ):
            current = module.parents.get(current)
        return current

    def _imported_from(self, module: _Module, name: str) -> _Module | None:
        for node in module.tree.body:
            if (
                isinstance(node, ast.ImportFrom)
                and node.module in self.modules
                and any((alias.asname or alias.name) == name for alias in node.names)
            ):
                return self.modules[node.module]
        return None

    # -- classes ----------------------------------------------------------------------------
    def _classes_of(self, module: _Module, holder: ast.Name) -> list[str] | None:
        """The classes `holder` is declared as: `except C as holder`, or `holder: C`."""
        current: ast.AST | None = holder
        while current is not None:
            if isinstance(current, ast.ExceptHandler) and current.name == holder.id:
                return _class_names(current.type)
            if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
                for argument in current.args.args + current.args.kwonlyargs:
                    if argument.arg == holder.id and argument.annotation is not None:
                        return _class_names(argument.annotation)
            current = module.parents.get(current)
        return None

    def _bases(self, name: str) -> list[str]:
        return [b for _, c in self.classes.get(name, []) for b in _class_names(c.bases) or []]

    def _raised_subclasses(self, roots: list[str]) -> list[str]:
        """The classes in `roots` and their subclasses, without a base that is never raised
        itself (only its subclasses are)."""
        family = set(roots)
        grew = True
        while grew:
            grew = False
            for name in list(self.classes):
                if name not in family and any(b in family for b in self._bases(name)):
                    family.add(name)
                    grew = True
        has_subclasses = {b for name in family for b in self._bases(name)}
        return sorted(n for n in family if n not in has_subclasses or n in self.calls)

    def _class_attribute_node(self, name: str, attribute: str) -> tuple[_Module, ast.expr] | None:
        for module, cls in self.classes.get(name, []):
            for statement in cls.body:
                for value, position in _statement_assignments(statement, attribute):
                    if position is None:
                        return module, value
        for base in self._bases(name):
            found = self._class_attribute_node(base, attribute)
            if found is not None:
                return found
        return None

    def _class_attribute(self, name: str, attribute: str) -> object:
        found = self._class_attribute_node(name, attribute)
        if found is not None and isinstance(found[1], ast.Constant):
            return found[1].value
        return None

    def _instance_assignments(
        self, name: str, attribute: str
    ) -> Iterator[tuple[_Module, ast.expr]]:
        """`self.<attribute> = value` in the class's (or its bases') methods."""
        for module, cls in self.classes.get(name, []):
            for node in ast.walk(cls):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if (
                            isinstance(target, ast.Attribute)
                            and target.attr == attribute
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                        ):
                            yield module, node.value
        for base in self._bases(name):
            yield from self._instance_assignments(base, attribute)

    def _retryable_at(self, module: _Module, node: ast.AST, holder: str) -> bool | None:
        """What `if holder.retryable` around `node`, or an `if holder.retryable: return`
        before it, says about `holder.retryable` there."""
        child: ast.AST = node
        parent = module.parents.get(child)
        while parent is not None:
            if isinstance(parent, ast.If):
                test = _narrowing_of(parent.test)
                if test is not None and test.name == holder:
                    if child in parent.body:
                        return test.retryable
                    if child in parent.orelse:
                        return not test.retryable
            body = getattr(parent, "body", None)
            if isinstance(body, list) and child in body:
                for earlier in body[: body.index(child)]:
                    if isinstance(earlier, ast.If) and earlier.body:
                        test = _narrowing_of(earlier.test)
                        ends = isinstance(earlier.body[-1], ast.Return | ast.Raise)
                        if test is not None and test.name == holder and ends:
                            return not test.retryable
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
                return None
            child, parent = parent, module.parents.get(parent)
        return None

    # -- reporting --------------------------------------------------------------------------
    def _relative(self, module: _Module) -> str:
        return str(module.path.relative_to(self.root))

    def _unresolved(self, module: _Module, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", "?")
        self.unresolved.append(
            f"{self._relative(module)}:{line}: cannot trace {what} "
            f"({ast.unparse(node)[:80] if isinstance(node, ast.expr) else type(node).__name__})"
        )


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _parameters(function: _Function) -> list[str]:
    args = function.args
    return [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]


def _default(function: _Function, parameter: str) -> ast.expr | None:
    args = function.args
    positional = args.posonlyargs + args.args
    with_defaults = positional[len(positional) - len(args.defaults) :]
    defaults = dict(zip([a.arg for a in with_defaults], args.defaults, strict=True))
    if parameter in defaults:
        return defaults[parameter]
    for argument, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if argument.arg == parameter and default is not None:
            return default
    return None


def _is_static(function: _Function) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)


def _class_names(node: ast.expr | list[ast.expr] | None) -> list[str] | None:
    if node is None:
        return None
    items = node if isinstance(node, list) else [node]
    names: list[str] = []
    for item in items:
        if isinstance(item, ast.Tuple):
            names += _class_names(list(item.elts)) or []
        elif isinstance(item, ast.Name):
            names.append(item.id)
        elif isinstance(item, ast.Attribute):
            names.append(item.attr)
        else:
            return None
    return names


def _narrowing_of(test: ast.expr) -> _Narrowing | None:
    """`x.retryable` or `not x.retryable` as what it says about x."""
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    inner = test.operand if isinstance(test, ast.UnaryOp) and negated else test
    if (
        isinstance(inner, ast.Attribute)
        and inner.attr == "retryable"
        and isinstance(inner.value, ast.Name)
    ):
        return _Narrowing(inner.value.id, not negated)
    return None


def _index(position: int | None, index: int | None) -> int | None:
    """The element to follow: of a tuple that was unpacked at `position`, then `index`."""
    if position is None:
        return index
    assert index is None, "a tuple unpacked from a tuple element"
    return position


def _statement_assignments(statement: ast.stmt, name: str) -> Iterator[tuple[ast.expr, int | None]]:
    """The values `statement` assigns to `name` (with the position when it unpacks a tuple)."""
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name) and target.id == name:
                yield statement.value, None
            elif isinstance(target, ast.Tuple):
                for position, element in enumerate(target.elts):
                    if isinstance(element, ast.Name) and element.id == name:
                        yield statement.value, position
    elif (
        isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.target.id == name
        and statement.value is not None
    ):
        yield statement.value, None


def _assignments(scope: ast.AST, name: str) -> Iterator[tuple[ast.expr, int | None]]:
    """Assignments to `name` in `scope` (a function's own body, not nested functions; or a
    module's top level)."""
    if isinstance(scope, ast.Module):
        for statement in scope.body:
            yield from _statement_assignments(statement, name)
        return
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.stmt):
            yield from _statement_assignments(node, name)
        if isinstance(node, ast.NamedExpr) and node.target.id == name:
            yield node.value, None
        pending.extend(ast.iter_child_nodes(node))

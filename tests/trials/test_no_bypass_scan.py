"""No write bypasses the audit trail (issue 8, "No lost data").

django-simple-history records what goes through ``Model.save()`` and ``Model.delete()``; it does
not see ``QuerySet.update()``, ``bulk_update()``, ``bulk_create()``, a queryset ``delete()`` that
Django can fast-path, or raw SQL. ``AuditedQuerySet`` refuses those on audited models at run time;
this test refuses them in the source: it parses the project's own code with ``ast`` and fails on
every such call that is not in ``ALLOWED`` below, with a one-line reason why it is safe.

A call whose receiver is provably a plain ``dict`` or ``set`` (the name is only ever bound to a
dict/set display, comprehension or ``dict()``/``set()`` call in that scope) is not a database
write and needs no entry. Anything else -- a queryset, a manager, an unknown name -- does.
"""
import ast
from collections import defaultdict
from pathlib import Path

from django.apps import apps
from simple_history.manager import HistoryManager

from trials.audit import AuditedQuerySet

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "trials", "toxicity", "reporting")  # the project's code; not tests/ or .venv

# Method names that write without simple-history seeing it, or open raw SQL.
FLAGGED = {"update", "bulk_update", "bulk_create", "raw", "delete", "execute", "executemany", "cursor"}

# (file, enclosing function, method) -> why this call cannot lose an audit row.
ALLOWED = {
    # The one sanctioned bulk path: COPY (PostgreSQL) / executemany (SQLite) writes each row *and* its
    # "+" history row in the same transaction; ids are reserved from the sequence first.
    ("trials/bulk.py", "_reserve_ids", "execute"): "reads nextval()/MAX(id) to reserve primary keys, writes nothing",
    ("trials/bulk.py", "_write", "executemany"): "SQLite branch of the bulk path; history rows are written beside the rows",
    ("trials/bulk.py", "bulk_insert", "cursor"): "the bulk path's COPY cursor; every audited row gets its history row",
    # The bulk update of re-derived grades: one UPDATE of the changed rows, then their "~" history
    # rows (the whole row, user, reason) in the same transaction, with the locks checked first.
    ("trials/bulk.py", "bulk_update_with_history", "cursor"): "writes the '~' history rows of the updated rows",
    ("trials/bulk.py", "bulk_update_with_history", "bulk_update"): "the rows whose history rows follow at once",
    # Audited data migrations write the history row of every row they change themselves
    # (toxicity/migrations/_history_rows.py): a migration sees plain managers.
    ("toxicity/migrations/0007_consciousness_alert.py", "forwards", "bulk_update"):
        "awakens_spontaneously -> alert, each row's system history row written beside it",
    ("toxicity/migrations/0007_consciousness_alert.py", "forwards", "bulk_create"): "those history rows",
    ("toxicity/migrations/0008_toci_episode_max_superseded.py", "forwards", "bulk_update"):
        "superseded queries closed, each query's history row and thread message written beside it",
    ("toxicity/migrations/0008_toci_episode_max_superseded.py", "forwards", "bulk_create"):
        "those history rows and messages",
    # A membership revoke deletes the row on purpose; Model.delete() sends post_delete, so
    # simple-history writes the "-" row with the user and reason.
    ("trials/services.py", "membership_revoke", "delete"): "instance delete: simple-history records the '-' row",
    # DDL and privileges for append-only history (triggers, GRANT/REVOKE, catalogue reads): no rows written.
    ("trials/management/commands/harden_history_tables.py", "handle", "cursor"): "installs the refusing triggers",
    ("trials/management/commands/harden_history_tables.py", "_grant", "execute"): "GRANT/REVOKE and pg_catalog reads",
    # Derived or operational rows that are not audited (no history manager, re-derivable).
    ("toxicity/course/store.py", "store_episodes", "bulk_create"): "derived episodes: re-derived, not audited",
    ("toxicity/course/load.py", "_fetch", "cursor"): "the course loader's SELECT, compiled once by the ORM: read-only",
    ("toxicity/course/load.py", "_fetch", "execute"): "the course loader's SELECT, compiled once by the ORM: read-only",
    ("toxicity/course/store.py", "store_episodes", "bulk_update"): "derived episodes: re-derived, not audited",
    ("reporting/deid.py", "ensure_date_shifts", "bulk_create"): "export date offsets: derived, not clinical, not audited",
    ("reporting/report_runs.py", "_update", "update"): "ReportRun progress: a job row, not audited",
    ("reporting/report_runs.py", "_render", "update"): "ReportRun step text: a job row, not audited",
    ("reporting/export_views.py", "_logged", "update"): "access-log row count after streaming: not a history model",
    ("reporting/exports.py", "_copy_rows", "cursor"): "the export's COPY ... TO STDOUT: read-only",
    # Not database calls at all (receivers the scan cannot prove to be dicts).
    ("config/settings.py", "<module>", "update"): "DATABASES OPTIONS dict",
    ("toxicity/forms.py", "_adverse_event_fields", "update"): "a form widget's HTML attrs dict",
    ("toxicity/forms.py", "log_form_class", "update"): "a form class's base_fields dict",
    ("toxicity/grading/engine.py", "grade_assessment", "update"): "a dataclass instance's __dict__",
}

# Models with a history manager whose default queryset is not AuditedQuerySet, and why.
HISTORY_WITHOUT_AUDITED_QUERYSET = {
    # Revoking a role deletes the row (the admin's delete action too); QuerySet.delete() of a model
    # with post_delete receivers is never fast-pathed, so simple-history records every "-" row.
    "trials.membership": "revoke = delete, recorded per row by simple-history",
    # Rule queries are written by bulk_insert (with history); tests/toxicity/test_queries.py ages a
    # query with QuerySet.update() to test the age filter. Service code never uses update() on it.
    "toxicity.query": "test fixture ages queries with update(); service code is scanned above",
}


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _is_dict_or_set(node) -> bool:
    if isinstance(node, (ast.Dict, ast.DictComp, ast.Set, ast.SetComp)):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in {"dict", "set", "defaultdict", "Counter", "OrderedDict"})


class _Scope:
    """Every binding of each name in one function (or the module): its value, or None if unknown."""

    def __init__(self, node):
        self.bindings = defaultdict(list)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None:
                    self.bindings[a.arg].append(None)
        for child in self._own_nodes(node):
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    self._bind(target, child.value)
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)):
                self._bind(child.target, getattr(child, "value", None))
            elif isinstance(child, (ast.For, ast.AsyncFor, ast.comprehension)):
                self._bind(child.target, None)
            elif isinstance(child, (ast.With, ast.AsyncWith)):
                for item in child.items:
                    if item.optional_vars is not None:
                        self._bind(item.optional_vars, None)
            elif isinstance(child, ast.NamedExpr):
                self._bind(child.target, child.value)

    @staticmethod
    def _own_nodes(node):
        """The nodes of this scope, not of nested functions or classes."""
        todo = list(ast.iter_child_nodes(node))
        while todo:
            child = todo.pop()
            yield child
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.extend(ast.iter_child_nodes(child))

    def _bind(self, target, value):
        if isinstance(target, ast.Name):
            self.bindings[target.id].append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, None)

    def plain_container(self, name: str) -> bool | None:
        """True: only ever a dict/set here; False: something else; None: not bound in this scope."""
        values = self.bindings.get(name)
        if not values:
            return None
        return all(v is not None and _is_dict_or_set(v) for v in values)


class _Finder(ast.NodeVisitor):
    def __init__(self, file: str, module):
        self.file, self.found = file, []
        self.names: list[str] = []
        self.scopes = [_Scope(module)]

    def _enter(self, node, scope=True):
        self.names.append(node.name)
        if scope:
            self.scopes.append(_Scope(node))
        self.generic_visit(node)
        if scope:
            self.scopes.pop()
        self.names.pop()

    def visit_FunctionDef(self, node):
        self._enter(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._enter(node, scope=False)

    def _receiver_is_plain_container(self, receiver) -> bool:
        if _is_dict_or_set(receiver):
            return True
        if not isinstance(receiver, ast.Name):
            return False
        for scope in reversed(self.scopes):  # the innermost scope that binds the name decides
            verdict = scope.plain_container(receiver.id)
            if verdict is not None:
                return verdict
        return False

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in FLAGGED:
            if not (func.attr == "update" and self._receiver_is_plain_container(func.value)):
                where = ".".join(self.names[-1:]) or "<module>"
                self.found.append((self.file, where, func.attr, node.lineno, ast.unparse(node)[:100]))
        self.generic_visit(node)


def scan():
    found = []
    for file, tree in _sources():
        finder = _Finder(file, tree)
        finder.visit(tree)
        found.extend(finder.found)
    return found


def test_every_bypassing_call_is_allowlisted_with_a_reason():
    found = scan()
    unexplained = [f"{file}:{line} in {func}(): {code}" for file, func, method, line, code in found
                   if (file, func, method) not in ALLOWED]
    assert not unexplained, (
        "These calls can write without a history row (or run raw SQL). Use the services / "
        "trials.bulk.bulk_insert_with_history, or add (file, function, method) to ALLOWED with a reason:\n"
        + "\n".join(unexplained)
    )


def test_the_allowlist_has_no_stale_entries():
    """An entry whose call is gone must go too, or it would silently allow a future bypass there."""
    used = {(file, func, method) for file, func, method, _, _ in scan()}
    assert set(ALLOWED) - used == set()
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_scanner_finds_what_it_is_meant_to_find(tmp_path):
    source = '''
DATA = {}
def f(qs, rows):
    qs.filter(x=1).update(y=2)
    Subject.objects.bulk_update(rows, ["x"])
    Subject.objects.bulk_create(rows)
    Subject.objects.raw("select 1")
    qs.delete()
    with connection.cursor() as c:
        c.execute("update x set y = 1")
    local = {"a": 1}
    local.update(b=2)
    DATA.update(c=3)
    rows.update(d=4)
'''
    finder = _Finder("x.py", ast.parse(source))
    finder.visit(ast.parse(source))
    assert [m for _, _, m, _, _ in finder.found] == [
        "update", "bulk_update", "bulk_create", "raw", "delete", "cursor", "execute", "update"]
    assert finder.found[-1][3] == 14  # rows.update: a parameter may be a queryset


def _history_models():
    for model in apps.get_models():
        manager = getattr(model, "history", None)
        if isinstance(manager, HistoryManager):
            yield model


def test_every_model_with_history_refuses_bulk_writes_or_is_explained():
    models = list(_history_models())
    assert len(models) >= 15  # trial set-up, clinical records, workflow rows, queries
    unexplained = []
    for model in models:
        audited = all(issubclass(manager._queryset_class, AuditedQuerySet)
                      for manager in (model._default_manager, model.objects))
        if not audited and model._meta.label_lower not in HISTORY_WITHOUT_AUDITED_QUERYSET:
            unexplained.append(model._meta.label)
    assert not unexplained, f"history-tracked models whose queryset allows update()/bulk writes: {unexplained}"
    explained = {m._meta.label_lower for m in models if not issubclass(m.objects._queryset_class, AuditedQuerySet)}
    assert explained == set(HISTORY_WITHOUT_AUDITED_QUERYSET)  # no stale entries

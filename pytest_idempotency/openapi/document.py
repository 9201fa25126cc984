"""Reading an OpenAPI document: JSON or YAML, its version, and ``$ref`` lookups.

References are JSON pointers into the document or into relative files; each file is read
once, its own references made absolute (relative to that file), and ``referencing`` (which
jsonschema brings) resolves what is not a pointer (anchors). Every reference is checked once at load time, so a dangling ``$ref`` is an
error naming its place, never a failure at request time; the schemas behind them are only
converted when an operation needs them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from .errors import DescriptionError, pointer
from .extensions import is_extension
from .limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_REF_HOPS, check_tree
from .recursive import resolve_recursive

__all__ = ["Document", "mapping_ref", "merge_patch", "read_data_file", "read_text"]

_YAML_HINT = "pip install pytest-idempotency[yaml]"


def read_data_file(path: Path, what: str) -> Any:
    """The parsed contents of a JSON or YAML file (YAML needs the ``yaml`` extra), refused
    when it is not a regular file, is over :data:`~.limits.MAX_FILE_BYTES`, or parses to
    more than a JSON document can say (see :func:`~.limits.check_tree`)."""
    text = read_text(path, what)
    try:
        data = _parse(text, path, what)
    except RecursionError:
        raise DescriptionError(
            str(path),
            "",
            f"the {what} nests objects and arrays more than {MAX_DEPTH} levels deep",
            f"nest at most {MAX_DEPTH} levels",
        ) from None
    check_tree(data, str(path))
    return data


def read_text(path: Path, what: str) -> str:
    """The text of a regular UTF-8 file of at most :data:`~.limits.MAX_FILE_BYTES` (a byte
    order mark dropped), or :class:`DescriptionError` saying why not."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise DescriptionError(
                str(path), "", f"the {what} is {kind}", "name a JSON or YAML file"
            )
        if info.st_size > MAX_FILE_BYTES:
            raise DescriptionError(
                str(path),
                "",
                f"the {what} has {info.st_size:,} bytes, more than the "
                f"{MAX_FILE_BYTES // 2**20} MiB the fake reads",
                "split it into files joined by $ref, or serve a smaller document",
            )
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
        return raw[:MAX_FILE_BYTES].decode("utf-8-sig")
    except FileNotFoundError:
        raise DescriptionError(
            str(path), "", f"cannot read the {what}: there is no such file", "name an existing file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptionError(
            str(path), "", f"cannot read the {what}: {exc}", "pass a readable UTF-8 file"
        ) from None


def _parse(text: str, path: Path, what: str) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        return _parse_yaml(text, path, what)
    try:
        return json.loads(text)
    except RecursionError:
        raise
    except ValueError as exc:
        if path.suffix.lower() == ".json":
            raise DescriptionError(
                str(path), "", f"the {what} is not valid JSON: {exc}", "fix the JSON syntax"
            ) from None
        return _parse_yaml(text, path, what)


def _parse_yaml(text: str, path: Path, what: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise DescriptionError(
            str(path),
            "",
            f"reading a YAML {what} needs PyYAML",
            f"{_YAML_HINT}, or convert the file to JSON",
        ) from None
    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise DescriptionError(
            str(path), "", f"the {what} is not valid YAML: {exc}", "fix the YAML syntax"
        ) from None


@functools.cache
def _yaml_loader() -> Any:
    """PyYAML's safe loader (its C version when libyaml is there) that keeps timestamps as
    the strings they were written as: a document's ``2024-05-01`` is a JSON string."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolvers = {
        first: [(tag, rx) for tag, rx in found if tag != "tag:yaml.org,2002:timestamp"]
        for first, found in base.yaml_implicit_resolvers.items()
    }
    return type("JSONSafeLoader", (base,), {"yaml_implicit_resolvers": resolvers})


#: What a ``$ref`` may name (chosen: the extensions of OpenAPI documents; anything else, such
#: as ``/etc/passwd`` or a ``.env`` file, would be read and quoted in an error).
_REFERABLE = (".json", ".yaml", ".yml")


class Document:
    """One OpenAPI document: its data, version and a resolver for its references."""

    def __init__(self, path: str | Path, overlay: str | Path | None = None) -> None:
        self.path = Path(path)
        self.source = str(path)
        self.data = read_data_file(self.path, "OpenAPI document")
        if overlay is not None:
            patch = read_data_file(Path(overlay), "overlay")
            if not isinstance(patch, dict) or not isinstance(self.data, dict):
                raise DescriptionError(
                    str(overlay),
                    "",
                    "an overlay must be an object (a JSON merge patch of the document)",
                    'write the parts to add or change, e.g. {"x-idempotency": {"ttl": 3600}}',
                )
            self.data = merge_patch(self.data, patch)
        self.version = self._check_version()
        self.data = resolve_recursive(self.data, "", self.source)
        self.is_30 = self.version.startswith("3.0")
        self.uri = self.path.resolve().as_uri()
        self._cache: dict[str, Any] = {}
        self._files: dict[str, Any] = {}
        resource = DRAFT202012.create_resource(self.data)
        empty: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]
        registry = empty.with_resource(self.uri, resource)
        self.resolver = registry.resolver(base_uri=self.uri)
        self._check_refs()

    def error(self, where: str, problem: str, fix: str) -> DescriptionError:
        return DescriptionError(self.source, where, problem, fix)

    def where_of(self, ref: str) -> str:
        """The place a reference names, as errors write it: a pointer in the document
        (``/components/schemas/X``), else ``file.yml#/pointer`` with the file relative to the
        document's folder."""
        if ref.startswith("#"):
            return ref[1:]
        uri, _, fragment = urljoin(self.uri, ref).partition("#")
        if uri == self.uri:
            return fragment
        return f"{_relative(uri, self.path)}#{fragment}"

    def _shown(self, ref: str) -> str:
        """A reference as the document's author wrote it: an absolute ``file:`` one (made so
        by :func:`_rebase`) as ``file.yml#/pointer``."""
        return self.where_of(ref) if ref.startswith("file:") else ref

    def followed(self, node: Any, where: str) -> tuple[Any, str]:
        """A path item or operation with its ``$ref`` followed and the fields written beside
        the ``$ref`` (``x-idempotency``, ``summary``, an overlay's additions) merged over what
        it names."""
        found, at = self.deref(node, where)
        if not isinstance(node, dict) or "$ref" not in node or not isinstance(found, dict):
            return found, at
        return merge_patch(found, {k: v for k, v in node.items() if k != "$ref"}), at

    def _check_version(self) -> str:
        data = self.data
        if not isinstance(data, dict) or ("openapi" not in data and "swagger" not in data):
            raise self.error(
                "",
                "this is not an OpenAPI document (no top-level 'openapi' field)",
                "pass an OpenAPI 3.0 or 3.1 document, or a contract file with --contract",
            )
        if "swagger" in data:
            raise self.error(
                "/swagger",
                f"Swagger {data['swagger']} (OpenAPI 2) is not supported",
                "convert it to OpenAPI 3 (e.g. with swagger2openapi)",
            )
        version = str(data["openapi"])
        if not re.fullmatch(r"3\.[01](\.\d+)?([-+][\w.]*)?", version):
            raise self.error(
                "/openapi",
                f"OpenAPI {version} is not supported (3.0 and 3.1 are)",
                "use an OpenAPI 3.0.x or 3.1.x document",
            )
        if not isinstance(data.get("paths"), dict) or not data["paths"]:
            webhooks = "webhooks" in data and version.startswith("3.1")
            raise self.error(
                "/paths",
                "the document declares only webhooks, which the fake does not serve; it serves "
                "the operations under paths"
                if webhooks
                else "the document has no paths",
                "declare the operations to serve under 'paths' (webhooks are not served)"
                if webhooks
                else "declare the operations to serve under 'paths'",
            )
        return version

    def _retrieve(self, uri: str) -> Resource[Any]:
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise Unresolvable(uri)
        path = Path(url2pathname(parts.path))
        if path.suffix.lower() not in _REFERABLE and path.is_file():
            raise DescriptionError(
                str(path),
                "",
                "a $ref may name only a .json, .yaml or .yml file, so a document cannot make "
                "the fake read (and quote) any other file",
                "give the referenced file one of those extensions",
            )
        data = read_data_file(path, "referenced file")
        return DRAFT202012.create_resource(data)

    # -- references ----------------------------------------------------------------------------

    def _check_refs(self) -> None:
        checked: set[str] = set()
        pending = list(_refs(self.data, ()))
        while pending:
            where, ref = pending.pop()
            if ref in checked:
                continue
            checked.add(ref)
            found = self._check_ref(where, ref)
            if not ref.startswith("#"):  # a file's own references are relative to that file
                at = self.where_of(ref)
                pending += [(at + inner, r) for inner, r in _refs(found, ())]

    def _check_ref(self, where: str, ref: str) -> Any:
        if not ref.startswith("#") and "://" in ref.split("#")[0] and not ref.startswith("file:"):
            raise self.error(
                where,
                f"the $ref {self._shown(ref)!r} points to another server",
                "bundle the document into one file (e.g. redocly bundle)",
            )
        try:
            return self.lookup(ref)
        except _BadIndex as exc:
            raise self.error(
                where,
                f"the $ref {self._shown(ref)!r} points nowhere: {exc}",
                "index an array by the number of its item, from 0 (e.g. .../parameters/0)",
            ) from None
        except DescriptionError as exc:  # the file it names cannot be read
            raise self._unreadable(where, ref, exc) from None
        except (Unresolvable, LookupError) as exc:
            if isinstance(exc.__cause__, DescriptionError):
                raise self._unreadable(where, ref, exc.__cause__) from None
            raise self.error(
                where,
                f"the $ref {self._shown(ref)!r} points nowhere",
                "point it at an existing component, e.g. '#/components/schemas/Name'",
            ) from None

    def _unreadable(self, where: str, ref: str, exc: DescriptionError) -> DescriptionError:
        return self.error(
            where,
            f"the $ref {self._shown(ref)!r} cannot be followed: {exc.source} at {exc.where or '/'}: "
            f"{exc.problem}",
            exc.fix,
        )

    def lookup(self, ref: str) -> Any:
        """What ``ref`` points at: a JSON pointer into this document or into a file (each file
        read once, its own references made absolute), else through ``referencing``."""
        found = self._cache.get(ref)
        if found is None:
            found = _walk(self.data, ref[1:]) if ref.startswith("#") else self._in_file(ref)
            self._cache[ref] = found
        return found

    def _in_file(self, ref: str) -> Any:
        uri, _, fragment = urljoin(self.uri, ref).partition("#")
        if fragment and not fragment.startswith("/"):  # an anchor, not a pointer
            return _rebase(self.resolver.lookup(ref).contents, uri)
        if uri == self.uri:
            return _walk(self.data, fragment)
        data = self._files.get(uri)
        if data is None:
            place = _relative(uri, self.path)
            contents = resolve_recursive(self._retrieve(uri).contents, place, self.source)
            data = self._files[uri] = _rebase(contents, uri)
        return _walk(data, fragment)

    def deref(self, node: Any, where: str, depth: int = 0) -> tuple[Any, str]:
        """``node`` with a ``$ref`` followed (repeatedly), and the place it came from."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise self.error(
                    where,
                    f"the $ref chain through {ref!r} loops",
                    "make the chain end at a definition",
                )
            if depth >= MAX_REF_HOPS:
                raise self.error(
                    where,
                    f"the $ref chain through {ref!r} is longer than {MAX_REF_HOPS} hops",
                    "point the $ref at the definition itself",
                )
            seen.add(ref)
            node, where, depth = self.lookup(ref), self.where_of(ref), depth + 1
        return node, where


class _BadIndex(LookupError):
    """A JSON pointer step into an array that is not one of its indexes."""


def _walk(data: Any, ptr: str) -> Any:
    """Follow a JSON pointer (``/components/schemas/X``) through ``data``."""
    from urllib.parse import unquote

    node = data
    for raw in ptr.split("/")[1:] if ptr else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise _BadIndex(f"{part!r} is not an index of an array of {len(node)} items")
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise LookupError(ptr)
    return node


def _refs(node: Any, parts: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, tuple[str, ...]]] = [(node, parts)]
    seen: set[int] = set()  # a node YAML aliases share is walked once
    while stack:
        current, here = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield pointer(*here, "$ref"), ref
            yield from _mapping_refs(current, here)
            for name, value in current.items():
                if isinstance(value, (dict, list)) and not is_extension(name, here[-1:]):
                    stack.append((value, (*here, name)))
        elif isinstance(current, list):
            for index, value in enumerate(current):
                if isinstance(value, (dict, list)):
                    stack.append((value, (*here, str(index))))


def _mapping_refs(node: dict[str, Any], here: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """The targets of a ``discriminator``'s ``mapping`` (references too)."""
    found = node.get("discriminator")
    mapping = found.get("mapping") if isinstance(found, dict) else None
    if isinstance(mapping, dict) and not isinstance(node.get("$ref"), str):
        for value, target in mapping.items():
            if isinstance(target, str):
                yield pointer(*here, "discriminator", "mapping", str(value)), mapping_ref(target)


def mapping_ref(target: str) -> str:
    """A discriminator mapping's target as a ``$ref``: a bare name (``Cat``) names
    ``#/components/schemas/Cat``."""
    if "/" in target or "#" in target or target.endswith((".json", ".yaml", ".yml")):
        return target
    return f"#/components/schemas/{target}"


def _rebase(node: Any, base: str, parent: str | None = None) -> Any:
    """A copy of ``node`` (from the file at ``base``) whose ``$ref`` values and
    ``discriminator`` mapping references are absolute, so they resolve the same wherever
    the node is used (a mapping's bare schema name stays a name)."""
    if isinstance(node, list):
        return [_rebase(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        name: value if is_extension(name, parent) else _rebase(value, base, str(name))
        for name, value in node.items()
    }
    ref = node.get("$ref")
    if isinstance(ref, str):
        out["$ref"] = _absolute(ref, base)
    found = out.get("discriminator")
    if isinstance(found, dict) and isinstance(found.get("mapping"), dict):
        mapping = {
            name: _absolute(t, base) if isinstance(t, str) and mapping_ref(t) == t else t
            for name, t in found["mapping"].items()
        }
        out["discriminator"] = {**found, "mapping": mapping}
    return out


def _absolute(ref: str, base: str) -> str:
    return base + ref if ref.startswith("#") else urljoin(base, ref)


def _relative(uri: str, root: Path) -> str:
    """A file's URI as a path relative to the folder of the document at ``root``."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    path = url2pathname(urlsplit(uri).path)
    try:
        return Path(os.path.relpath(path, root.resolve().parent)).as_posix()
    except ValueError:  # another drive
        return Path(path).as_posix()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = merge_patch(out.get(name), value)
    return out

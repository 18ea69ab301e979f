"""What Snakemake needs to plan the workflow from a config, light enough for every ``snakemake``
start: the config file read with errors that name the line, which models are mixed, a
comparison's models, and whether this exact config already passed ``glmflow.config``'s checks.

Those checks import formulaic and read the data's columns, so the key of what they read is
kept after they pass (``.snakemake/glmflow/config-checked``): the config as loaded, the schema, the code of the
checks, and each dataset file's size and modification time. Any change to one of them (a touched
data file too) runs the checks again; an unchanged workflow skips them. The config with the
schema's defaults filled in is kept beside the key, so that an unchanged workflow need not
import jsonschema and validate again either.
"""

# measured: the checks took 0.36 s of a 1.7 s no-op run (Snakemake itself 1.0 s); importing
# jsonschema and validating, 0.11 s more

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from glmflow.errors import GlmflowError
from glmflow.fingerprint import code_fingerprint
from glmflow.formula_syntax import random_effect_terms

CHECKED = Path(".snakemake") / "glmflow" / "config-checked"
# The most values (scalars, lists, mappings) the config may hold once its aliases are unfolded:
# a config of 1 KB nesting aliases ten deep unfolds to billions, which Snakemake and the schema
# check then walk (75 s and 3 GB before any message); a real config holds a few thousand.
MAX_CONFIG_VALUES = 100_000
CHECKS = Path(__file__).with_name("config.py")


def load_config_yaml(path: str | Path, given: bool = False) -> dict:
    """A YAML file, or an error that names its line and column (Snakemake's does not). Read here
    before Snakemake's ``configfile:`` reads it, so that what Snakemake would do with it is
    refused first: YTE templating (code) and a key given twice (YAML keeps the last, silently).
    ``given``: a file of ``--configfile``, which Snakemake's command line has already read."""
    path = Path(path)
    text = path.read_text()
    try:
        # libyaml's loader where PyYAML was built with it: 0.9 ms for config.yaml, against 7.9 ms
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _refuse_alias_bombs(path, node)
                _refuse_duplicate_keys(path, loader, node)
            config = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError:
        config = _yaml_error(path, text)
    _refuse_templating(path, config, given)
    return config


def check_given_configfiles(workflow) -> None:
    """The files of ``--configfile``, checked as config.yaml is (templating, a key given twice,
    alias bombs). Snakemake's command line reads them, YTE and all, before the Snakefile runs, so
    a templated file's expressions have run by now: its run is refused before any job uses them."""
    for path in workflow.overwrite_configfiles:
        load_config_yaml(path, given=True)


def read_config_yaml(workflow) -> bool:
    """Whether the Snakefile reads ``config.yaml`` of the working directory: not when it runs as
    a module given its importer's ``config:`` (Snakemake skips ``configfile:`` then), nor under
    ``--configfile`` (those files alone are the config, so a user's config runs without the
    chapter's models; Snakemake would merge them into config.yaml). Cluster jobs get the same
    ``--configfile`` arguments, so they decide the same way. Where config.yaml is to be read and
    is missing, an error says where it was looked for and the ways to give a config."""
    if getattr(workflow.modifier, "skip_configfile", False) or workflow.overwrite_configfiles:
        return False
    if not Path("config.yaml").is_file():
        raise GlmflowError(
            f"config.yaml: not found in {Path.cwd()} (nothing was run): glmflow reads its config from the "
            "directory where snakemake runs; run there, give your own with `--configfile my.yaml`, or use "
            "glmflow as a module with `config: config` (README: Use as a Snakemake module)"
        )
    return True


def _refuse_alias_bombs(path: Path, root: yaml.Node) -> None:
    """Refuse a document whose aliases unfold to more than MAX_CONFIG_VALUES values, counted on
    the node graph (each node once, its unfolded size remembered), so the count itself is quick."""
    sizes: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            sizes[id(node)] = 1
            continue
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in children)
        if sizes[id(node)] > MAX_CONFIG_VALUES:
            line = node.start_mark.line + 1
            raise GlmflowError(
                f"{path}: line {line}: its aliases (*name) unfold to more than {MAX_CONFIG_VALUES} values "
                "(nothing was run): a config this large is an alias bomb, not an analysis; write the "
                "values out, or repeat an anchor only where a few values are shared"
            )


def _refuse_duplicate_keys(path: Path, loader, root: yaml.Node) -> None:
    """A key that a mapping gives twice, with its dotted path and both lines. Each node
    is visited once (anchors and aliases make a graph, possibly a very large one unfolded)."""
    seen_nodes, stack = set(), [(root, "")]
    while stack:
        node, where = stack.pop()
        if id(node) in seen_nodes or not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(node.value))))
            continue
        lines: dict = {}
        children = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                children.append((value_node, where))
                continue
            key = loader.construct_object(key_node, deep=True)
            dotted = f"{where}.{key}" if where else str(key)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: the constructor refuses it with its line
                continue
            if first is not None:
                where_given = f"at lines {first} and {line}" if first != line else f"on line {line}"
                raise GlmflowError(
                    f"{path}: {dotted}: the key is given twice, {where_given} (nothing was run): YAML would "
                    "keep the last one silently; remove one or rename it"
                )
            lines[key] = line
            children.append((value_node, dotted))
        stack.extend(reversed(children))  # depth first, in the file's order


def _yaml_error(path: Path, text: str) -> dict:
    """The error again from PyYAML's own loader, whose words are clearer (it names a tab)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise GlmflowError(f"{path}: YAML syntax error at {where}: {error.problem or error}") from None


def _refuse_templating(path: Path, config, given: bool = False) -> None:
    """Snakemake reads a config file with YTE, which evaluates ``?expr`` values as Python when the
    file says ``__use_yte__: true`` at its top: config would be code. Refused, whatever its value."""
    if isinstance(config, dict) and "__use_yte__" in config:
        evaluated = (
            "Snakemake's command line has already run its ?expressions as Python code (it reads --configfile "
            "files before the workflow starts), and config is data; remove __use_yte__, write the values out and "
            "pass only files you trust to --configfile"
            if given
            else "Snakemake would run its ?expressions as Python code, and config is data; remove __use_yte__ and "
            "write the values out"
        )
        raise GlmflowError(f"{path}: __use_yte__: YTE templating is refused (nothing was run): {evaluated}")


def is_mixed(model: dict) -> bool:
    """A model with a random-effect term ``( | )`` is a mixed model."""
    return bool(random_effect_terms(model["formula"]))


def is_linear_mixed(model: dict) -> bool:
    """A mixed model with the gaussian family and the identity link: lme4's lmer, not glmer."""
    return is_mixed(model) and model["family"] == "gaussian" and (model.get("link") or "identity") == "identity"


def comparison_models(comparison: dict) -> list[str]:
    """The models of a comparison, smallest first: ``models``, or ``[compact, augmented]``."""
    return list(comparison["models"]) if "models" in comparison else [comparison["compact"], comparison["augmented"]]


def check_key(config: dict, schema_path: str | Path, base: str | Path = ".") -> str | None:
    """sha256 of what the config checks read; None where a dataset file cannot be found (or the
    config is not even shaped as one): the checks then run and say what is wrong."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, default=str).encode() + b"\0")
    digest.update(Path(schema_path).read_bytes() + b"\0")
    digest.update(code_fingerprint(str(CHECKS)).encode() + b"\0")
    try:
        for name, spec in sorted(config["datasets"].items()):
            status = Path(base, spec["path"]).stat()
            digest.update(f"{name}\0{spec['path']}\0{status.st_size}\0{status.st_mtime_ns}\0".encode())
    except (AttributeError, KeyError, OSError, TypeError):
        return None
    return digest.hexdigest()


def checked_config(key: str | None) -> dict | None:
    """The config as it was when these exact checks last passed, defaults filled in; None where
    they have not (or the key is None): then the checks run."""
    if key is None or not CHECKED.is_file():
        return None
    try:
        kept = json.loads(CHECKED.read_text())
    except json.JSONDecodeError:  # written by an older glmflow (the key alone)
        return None
    return kept.get("config") if isinstance(kept, dict) and kept.get("key") == key else None


def remember_checked(key: str | None, config: dict) -> None:
    """Keep the key of a config that passed the checks, and the config with its defaults; not
    where JSON would not give back the same config (a non-string key, say)."""
    if key is None:
        return
    try:
        text = json.dumps({"key": key, "config": config})  # in order: params depend on it
    except (TypeError, ValueError):  # a YAML date, say
        return
    if json.loads(text)["config"] == config:
        CHECKED.parent.mkdir(parents=True, exist_ok=True)
        CHECKED.write_text(text)

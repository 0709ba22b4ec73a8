"""The layer order of docs/modalities.md: a module imports only from its layer or those below."""

import ast
from pathlib import Path

import selfsup

LAYERS = [
    "dist", "data", "augment", "encoders", "heads", "losses", "methods", "engine", "eval",
    "report", "modalities", "run", "cli",
]  # fmt: skip
# Modules outside the folders, placed in the order: config (typed settings, read by build and
# every layer above engine), build (config names -> methods, samplers), export, trained (run).
PLACE = {"safe_yaml": "dist", "config": "engine", "build": "engine", "export": "eval",
         "trained": "run", "__main__": "cli", "__init__": "cli"}  # fmt: skip
ROOT = Path(selfsup.__file__).parent


def layer_of(module: str) -> int:
    """Layer index of a dotted module under selfsup ("selfsup.eval.sts" -> eval's index)."""
    part = module.split(".")[1] if module.count(".") else "__init__"
    return LAYERS.index(PLACE.get(part, part))


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("selfsup"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("selfsup")]
    return names


def test_every_module_imports_only_from_below():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith("__init__") and module.count(".") > 1:
            module = module.rsplit(".", 1)[0] + ".x"  # a package's __init__: its own layer
        mine = layer_of(module)
        for name in imports(path):
            if name != "selfsup" and layer_of(name) > mine:
                wrong.append(f"{module} imports {name}")
    assert not wrong, "imports from a higher layer:\n" + "\n".join(wrong)


def test_the_run_layer_asks_the_modality_and_never_branches_on_it():
    source = (ROOT / "run.py").read_text()
    assert "modality ==" not in source and "modality !=" not in source
    assert "cfg.modality" not in source.replace("create_modality(cfg)", "")

"""docs/extending.md's examples, run as a user would: each '# file:' block written as a module, the other blocks
run in order in a fresh interpreter (so that the names they register do not reach the other tests)."""
import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def doc_blocks():
    """``({file name: source}, [usage block, ...])`` of the page, in its order."""
    files, usages = {}, []
    for block in BLOCK.findall(DOC.read_text()):
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = rest
        else:
            usages.append(block)
    return files, usages


def test_the_page_has_one_file_and_one_decorator_per_extension_point():
    files, usages = doc_blocks()
    decorators = {name: re.findall(r"^@(register_\w+)\(", source, re.M) for name, source in files.items()}
    assert sorted(d for found in decorators.values() for d in found) == sorted(
        ["register_model", "register_attention", "register_split", "register_augmentation", "register_reader",
         "register_format"])
    assert all(len(found) == 1 for found in decorators.values()), decorators
    assert len(usages) == len(files)


def test_the_examples_run(tmp_path):
    files, usages = doc_blocks()
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    script = tmp_path / "examples.py"
    script.write_text("\n".join(usages))
    repository = Path(__file__).resolve().parents[1]          # this checkout's hsi, whatever pip installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repository),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    oa = float(re.search(r"centre_mlp: OA ([\d.]+) %", result.stdout)[1])
    assert 30 < oa <= 100                       # it learnt: 16 classes, chance is far below
    assert (tmp_path / "maps" / "indian_pines_counts.csv").is_file()
    assert (tmp_path / "maps" / "indian_pines.npy").is_file()

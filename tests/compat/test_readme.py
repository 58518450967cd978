"""The README's commands work as typed: its example blocks run against a server started as `make run` starts it
(`--demo`, a home folder, `kiln` on the PATH), every command of its CLI reference exists with the flags it shows, and
`make run` serves an optimized build that it puts on the PATH."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import KILN, KilnServer, ROOT

README = open(os.path.join(ROOT, "README.md")).read()


def blocks():
    """(heading, text) of every ```sh block."""
    heading, out = "", []
    for match in re.finditer(r"^(#+ [^\n]*)$|^```sh\n(.*?)^```", README, re.M | re.S):
        if match.group(1):
            heading = match.group(1)
        else:
            out.append((heading, match.group(2)))
    return out


@pytest.fixture(scope="module")
def demo():
    """A server started the way `make run` starts it (`--demo`), and a PATH whose `kiln` is the binary under test."""
    server = KilnServer(tempfile.mkdtemp(prefix="kiln-readme-"), args=["--demo"], admin_token=None).start()
    bindir = tempfile.mkdtemp(prefix="kiln-path-")
    os.symlink(KILN, os.path.join(bindir, "kiln"))
    yield server, bindir
    server.stop()


def test_example_blocks_run_as_typed(demo):
    server, bindir = demo
    ran = 0
    for heading, block in blocks():
        lines = [line for line in block.splitlines() if not line.startswith("make ")]
        if "CLI" in heading or not lines:
            continue
        script = "\n".join(lines).replace(".kiln-demo", server.home).replace("http://127.0.0.1:5000", server.url)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        env.pop("KILN_URL", None)
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0, (heading, script, out.stdout, out.stderr)
        ran += 1
        if "kiln sql" in script:
            # The local and the remote query both answered from the demo table.
            assert out.stdout.count("(3 rows)") == 1 and out.stdout.count("(4 rows)") == 1, out.stdout
    assert ran >= 2


def test_cli_reference_names_commands_and_flags_that_exist():
    reference = next(b for h, b in blocks() if "CLI" in h)
    checked = 0
    for line in reference.splitlines():
        if not line.startswith("kiln "):
            continue
        words = []
        for token in line.split()[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", token):
                break
            words.append(token.split("|"))
        paths = [[]]
        for alternatives in words:
            paths = [p + [a] for p in paths for a in alternatives]
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
        helps = []
        for path in paths:
            out = subprocess.run([KILN, *path, "--help"], capture_output=True, text=True)
            assert out.returncode == 0 and "USAGE" in out.stdout, (line, path, out.stderr)
            helps.append(out.stdout)
        for flag in flags:
            assert any(flag in text for text in helps), (line, flag)
        checked += 1
    assert checked >= 20


def test_make_run_serves_an_optimized_build_on_the_path():
    plan = subprocess.run(["make", "-n", "run"], capture_output=True, text=True, cwd=ROOT).stdout
    assert "swift build -c release" in plan and ".build/release/kiln server" in plan and ".build/debug/kiln server" not in plan
    assert "ln -sf" in plan and "first build takes about" in plan
    assert "/usr/local/bin/kiln" in README and "export PATH=" in README


def test_server_help_claims_only_what_exists():
    text = subprocess.run([KILN, "server", "--help"], capture_output=True, text=True).stdout
    assert " UI" not in text and "MLflow" in text

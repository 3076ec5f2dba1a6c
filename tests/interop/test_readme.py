"""README.md is runnable as written: every `$ command` of its code blocks
runs, in README order, in a scratch directory holding a copy of examples/
and the experiments/ configs, with `routesim` on the PATH (the binary under
test), and prints exactly the lines the README shows under it; the output of
`make demo` shown in the quick start is what experiments/quickstart.json
prints; the quickstart config shown is experiments/quickstart.json.

The lines shown must be the lines of standard output and standard error
interleaved in some order (a terminal interleaves them as they are written,
a pipe does not). Timings ("planned in 0.144 ms") are not compared. A
command shown without output must succeed."""

import json
import os
import re
import shutil
import subprocess

from interop_util import BIN, check

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
README = os.path.join(ROOT, "README.md")
TIMING = re.compile(r"planned in [0-9.]+ ms")


def code_blocks(text):
    """[(language, [lines], line number of the opening fence)] of the fenced blocks."""
    blocks, lines, lang, start = [], None, "", 0
    for n, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            if lines is None:
                lines, lang, start = [], line[3:].strip(), n
            else:
                blocks.append((lang, lines, start))
                lines = None
        elif lines is not None:
            lines.append(line)
    return blocks


def commands(lines):
    """[(command, [expected output lines])] of a block of `$ ` lines."""
    out, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        cmd = lines[i][2:]
        while cmd.endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd = cmd[:-1] + " " + lines[i].strip()
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        out.append((cmd, shown))
    return out


def normalised(lines):
    lines = [TIMING.sub("planned in ... ms", line.rstrip()) for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def interleaves(shown, out, err):
    """Whether shown is out and err merged, each in its own order."""
    can = [[False] * (len(err) + 1) for _ in range(len(out) + 1)]
    can[0][0] = True
    for i in range(len(out) + 1):
        for j in range(len(err) + 1):
            if i and can[i - 1][j] and out[i - 1] == shown[i + j - 1]:
                can[i][j] = True
            if j and can[i][j - 1] and err[j - 1] == shown[i + j - 1]:
                can[i][j] = True
    return len(shown) == len(out) + len(err) and can[len(out)][len(err)]


def compare(what, shown, stdout, stderr, rendering):
    """The shown lines against what the command printed."""
    out, err = normalised(stdout.split("\n")), normalised(stderr.split("\n"))
    shown = normalised(shown)
    if not rendering:  # without gnuplot the figures' summary line differs
        shown = [line for line in shown if not line.startswith("routesim: plot:")]
        err = [line for line in err if not line.startswith("routesim: plot:")]
    if not check(interleaves(shown, out, err), f"README.md: {what}: the output differs from the README"):
        print("  README shows:\n    " + "\n    ".join(shown) + "\n  printed (standard output):\n    " +
              "\n    ".join(out) + "\n  printed (standard error):\n    " + "\n    ".join(err))


def scratch(tmp):
    """A working directory like the repository root for the README's commands."""
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(work, "examples"),
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    os.symlink(os.path.join(ROOT, "experiments"), os.path.join(work, "experiments"))
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    os.symlink(os.path.abspath(BIN), os.path.join(bindir, "routesim"))
    # ROUTESIM: the checkout whose headers the example plugin builds against.
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), ROUTESIM=ROOT,
               ROUTESIM_NO_PROGRESS="1")
    for inherited in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # from make check: not the reader's shell
        env.pop(inherited, None)
    return work, env


def shell(cmd, work, env):
    return subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True)


def test_readme_quickstart_config_is_the_shipped_one(tmp):
    with open(README) as f:
        text = f.read()
    with open(os.path.join(ROOT, "experiments", "quickstart.json")) as f:
        shipped = json.load(f)
    shown = [json.loads("\n".join(lines)) for lang, lines, _ in code_blocks(text)
             if lang == "json" and '"name": "quickstart"' in "\n".join(lines)]
    check(len(shown) == 1, f"README.md: expected one quickstart config block, found {len(shown)}")
    for config in shown:
        check(config == shipped, "README.md: the quickstart config differs from experiments/quickstart.json")


def test_readme_commands_print_what_it_shows(tmp):
    with open(README) as f:
        blocks = code_blocks(f.read())
    work, env = scratch(tmp)
    rendering = shutil.which("gnuplot") is not None

    demo = [(lines, n) for lang, lines, n in blocks if lines and lines[0].startswith("routesim: generating results/quickstart")]
    check(len(demo) == 1, f"README.md: expected one block of `make demo` output, found {len(demo)}")
    for lines, n in demo:
        r = shell("routesim run experiments/quickstart.json", work, env)
        if check(r.returncode == 0, f"README.md line {n}: routesim run experiments/quickstart.json: {r.stderr.strip()}"):
            compare(f"line {n}: make demo", lines, r.stdout, r.stderr, rendering)

    ran = 0
    for _, lines, n in blocks:
        for cmd, shown in commands(lines):
            ran += 1
            r = shell(cmd, work, env)
            if not check(r.returncode == 0, f"README.md block at line {n}: `{cmd}` failed: {r.stderr.strip()[-400:]}"):
                continue
            if normalised(shown):
                compare(f"block at line {n}: `{cmd}`", shown, r.stdout, r.stderr, rendering)
    check(ran >= 10, f"README.md: expected the tour's commands, found {ran}")

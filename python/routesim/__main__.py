"""`python3 -m routesim import FORMAT ...`: the importers that need Python
(formats that only Python can read, such as torch pickles); every other
format is imported by the `routesim import` command (docs/import.md)."""

import sys

FORMATS = {"sglang": "SGLang's expert distribution recorder dumps (.pt torch pickles) -> a top-k trace or a loads file"}

USAGE = """usage: python3 -m routesim import FORMAT INPUT... -o OUT [options]

formats:
""" + "".join(f"  {name:10s}{summary}\n" for name, summary in FORMATS.items()) + """
'python3 -m routesim import FORMAT --help' describes one. The other formats
are read by the routesim binary: 'routesim import --help'.
"""


def main(argv):
    if len(argv) >= 1 and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if len(argv) < 1 or argv[0] != "import":
        sys.stderr.write(USAGE)
        return 2
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        (sys.stdout if len(argv) >= 2 else sys.stderr).write(USAGE)
        return 0 if len(argv) >= 2 else 2
    if argv[1] not in FORMATS:
        print(f"routesim: error: unknown format '{argv[1]}' for python3 -m routesim import (known: "
              f"{', '.join(FORMATS)}; the routesim binary imports the others: routesim import --help)",
              file=sys.stderr)
        return 2
    from .import_sglang import main as import_sglang

    return import_sglang(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

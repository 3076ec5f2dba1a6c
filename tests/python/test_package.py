"""The package's version and its installation: `pip install --target`
copies the built library next to the package, which then loads it from
there."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import unittest

import routesim
from routesim import _lib
from util import ROOT, TempDirTest, gen_trace


class Version(unittest.TestCase):
    def test_equals_makefile_and_library(self):
        with open(os.path.join(ROOT, "Makefile")) as f:
            version = re.search(r"^VERSION := (\S+)$", f.read(), re.M).group(1)
        self.assertEqual(routesim.__version__, version)
        self.assertEqual(_lib.lib().rs_version().decode(), version)


class PipInstall(TempDirTest):
    def test_target_install_uses_the_copied_library(self):
        # A copy of python/ beside a build/ holding the library, as in a
        # checkout after `make`, so the install leaves the checkout untouched.
        src = self.path("src")
        shutil.copytree(os.path.join(ROOT, "python"), os.path.join(src, "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "libroutesim.so"))
        os.makedirs(os.path.join(src, "build"))
        shutil.copyfile(_lib.library_path(), os.path.join(src, "build", "libroutesim.so"))
        target = self.path("site")
        env = {k: v for k, v in os.environ.items() if k not in ("ROUTESIM_LIB", "PYTHONPATH")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                            "--target", target, os.path.join(src, "python")], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        installed = os.path.join(target, "routesim", "libroutesim.so")
        self.assertTrue(os.path.isfile(installed))

        shutil.rmtree(src)  # the installed package must not need the source or its build
        trace = gen_trace(self.path("t.h5"), tokens=100)
        code = textwrap.dedent(f"""
            import routesim
            from routesim import _lib
            print(routesim.__file__)
            print(_lib.library_path())
            print(len(routesim.route({trace!r}, "topk:k=2", "load")))
        """)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=self.tmp,
                           env=dict(env, PYTHONPATH=target))
        self.assertEqual(r.returncode, 0, r.stderr)
        package_file, library, rows = r.stdout.split()
        self.assertEqual(os.path.dirname(package_file), os.path.join(target, "routesim"))
        self.assertEqual(library, installed)
        self.assertGreater(int(rows), 0)


if __name__ == "__main__":
    unittest.main()

"""Installs the routesim package with the library built by `make`
(../build/libroutesim.so, or the file $ROUTESIM_LIB names) copied next to
it, where the package looks first. Without a built library the package
installs alone and looks in the checkout's build/ and the system."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def built_library():
    path = os.environ.get("ROUTESIM_LIB") or os.path.join(HERE, "..", "build", "libroutesim.so")
    return path if os.path.isfile(path) else None


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        lib = built_library()
        if lib:
            target = os.path.join(self.build_lib, "routesim", "libroutesim.so")
            self.mkpath(os.path.dirname(target))
            shutil.copyfile(lib, target)
            os.chmod(target, 0o755)


class LibraryDistribution(Distribution):
    """Carries a shared library: the wheel is platform-specific."""

    def has_ext_modules(self):
        return built_library() is not None


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=LibraryDistribution)

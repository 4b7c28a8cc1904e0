"""Which packages the wheel holds; everything else about the build is in pyproject.toml.

pyproject.toml alone cannot both find the code's packages and install resources/ under another
name: resources/ becomes the package `dreamclear_studio_resources` (docs/decisions.md).
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["dreamclear*", "engine*", "trainer*", "desktop*"]),
        "dreamclear_studio_resources",
    ],
    package_dir={"dreamclear_studio_resources": "resources"},
)

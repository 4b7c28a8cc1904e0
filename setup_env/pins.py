"""What the first-run set-up installs, pinned: torch, torchvision and the uv that installs them.

torch and torchvision are the releases this project is tested with (scripts/_venv.sh installs
the same ones for development; tests/installers checks they agree). uv is fetched as its PyPI
wheel and checked against the sha256 PyPI published for it, so a changed download is refused.
"""

from __future__ import annotations

TORCH = "2.14.1"
TORCHVISION = "0.29.1"

UV_VERSION = "0.13.9"
_UV_FILES = "https://files.pythonhosted.org/packages"
UV_WHEELS: dict[tuple[str, str], tuple[str, str]] = {
    # (sys.platform family, machine) -> (URL, sha256), from PyPI's index for uv 0.13.9.
    ("linux", "x86_64"): (
        f"{_UV_FILES}/3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/"
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    ("linux", "aarch64"): (
        f"{_UV_FILES}/fe/2f/51a5de367c602592c018a42a23d57fba5f2689fe6c3bf025dcf043b39c61/"
        "uv-0.13.9-py3-none-manylinux_2_28_aarch64.whl",
        "ecb6028d79dc96fbeafffe5c8af62a7099487ebc05a701e76714eebcffd06375",
    ),
    ("darwin", "x86_64"): (
        f"{_UV_FILES}/1e/db/08e9ef4879bd667e6d7b4705e594e5bd3e4585f10fc63cb16b9fa2fac63e/"
        "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
        "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    ),
    ("darwin", "arm64"): (
        f"{_UV_FILES}/f3/a7/a8d7b074798c7fb3b26b37584b8fe2e29df2ccdc24ce7902caab2a53edbf/"
        "uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
        "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    ),
    ("win32", "amd64"): (
        f"{_UV_FILES}/dd/ef/ceeabf3631117f7354787d9fb1ffe943899e59ed4b887a696ed547e47e76/"
        "uv-0.13.9-py3-none-win_amd64.whl",
        "6a44b2ed8111d2f60d2b92627c5dccda3f7ed7570b18ce115e569cd68c28246b",
    ),
    ("win32", "arm64"): (
        f"{_UV_FILES}/da/d1/d97a5db1f27e077e4d6329223f6b3f719c02c97e4092043f13e628558d05/"
        "uv-0.13.9-py3-none-win_arm64.whl",
        "eeb92051c2123b9730c46b04cc843cfa4bc7d7b0aec56df431a2215ef4cb0273",
    ),
}

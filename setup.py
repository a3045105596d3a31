"""Install with the pins in constraints.txt: ``make install`` (or
``pip install -c constraints.txt -e ".[cpu]"``; ``.[cu112]`` for NVIDIA GPUs)."""
import glob
import re

from setuptools import find_packages, setup

with open("vggcli/__init__.py") as f:
    version = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="vgg",
    version=version,
    description="Very deep convolutional networks (Simonyan & Zisserman, ICLR 2015) "
                "as a command-line toolkit on MXNet Gluon",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["vggcli", "vggcli.*", "data_tools", "data_tools.*"]),
    install_requires=[
        # MXNet itself comes from an extra: one build, CPU or CUDA, never both.
        "numpy==1.23.5",  # mxnet 1.9.1 breaks on numpy>=1.24
        "click>=8.1",
        "opencv-python<4.9",
        "Pillow>=9",  # data_tools.encode: CMYK/greyscale JPEGs, PNGs named .JPEG
        "protobuf>=3.20",  # vgg convert --from caffe reads .caffemodel files
        "scipy<1.12",
        "matplotlib<3.8",
        "scikit-learn>=1.3,<1.8",
        "PyYAML>=6",
        "tqdm>=4.60",
    ],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "cu112": ["mxnet-cu112==1.9.1"],
        # optional readers/writers: torchvision .pth files, ONNX export
        "torch": ["torch==2.13.0"],
        "onnx": ["onnx>=1.15,<1.19", "onnxruntime"],  # onnx 1.19+ lacks onnx.mapping
        # make bench's peers and photos; GluonCV also for vgg convert --from gluoncv tests
        "bench": ["gluoncv==0.10.5.post0", "scikit-image>=0.22,<0.25", "torch==2.13.0"],
        "test": ["pytest>=7", "ruff", "torch==2.13.0", "onnx>=1.15,<1.19", "onnxruntime",
                 "gluoncv==0.10.5.post0", "scikit-image>=0.22,<0.25", "hypothesis>=6.100"],
    },
    # recipes/ ships beside the package (vggcli.training.recipes.recipes_dir finds it)
    data_files=[("share/vgg/recipes", sorted(glob.glob("recipes/*.yaml"))),
                ("share/vgg/recipes/reproduce", ["recipes/reproduce/protocol.yaml"])],
    entry_points={"console_scripts": ["vgg=vggcli.cli:main"]},
)

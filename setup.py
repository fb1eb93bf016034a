"""clipdense: CLIP-based dense prediction on OpenMMLab."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'clipdense', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` (comments dropped)."""
    with open(osp.join(HERE, 'requirements', name + '.txt')) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


setup(
    name='clipdense',
    version=read_version(),
    description='CLIP-based dense prediction (DenseCLIP, MaskCLIP, OVSeg, '
    'ReCo, AnoVL, AffordanceCLIP, VLTSeg) on OpenMMLab',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    package_data={
        'clipdense':
        ['testing/model_configs/*.json', 'models/model_configs/*.json',
         'datasets/resources/*.txt', 'datasets/resources/ovseg_names/*.txt']
    },
    install_requires=read_requirements('torch') +
    read_requirements('mminstall') + read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    zip_safe=False,
)

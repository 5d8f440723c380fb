"""annpal: genome-wide association signals from interpreted neural networks.

Implements and extends Yelmen et al., *Interpreting artificial neural networks to detect genome-wide
association signals for complex traits*. The library holds the science (pure, typed functions); the
``bin/annpal-*`` executables are thin command-line wrappers and ``main.nf`` is the Nextflow pipeline.
"""

from annpal.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]

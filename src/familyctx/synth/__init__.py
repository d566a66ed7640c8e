"""Synthetic council data: families across councils, in each council's warehouse shape, with ground truth.

Entry point: :func:`run` with :class:`SynthOptions` (build them with :func:`build_options`).
"""

from familyctx.synth.options import DEFAULT_AS_OF, SynthInputError, SynthOptions, build_options
from familyctx.synth.runner import SynthResult, run

__all__ = ["DEFAULT_AS_OF", "SynthInputError", "SynthOptions", "SynthResult", "build_options", "run"]

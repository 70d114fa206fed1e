"""Where ensemble artifacts written before the kinds table find their classes: their pickles name this module.

The ensemble kind is `tagger.kinds.ensemble`; this module only keeps the pickled class paths loadable.
"""

from sotag.tagger.kinds.ensemble import EnsembleFeatures, EnsembleModel, EnsembleVectorizer, combine

__all__ = ["EnsembleFeatures", "EnsembleModel", "EnsembleVectorizer", "combine"]

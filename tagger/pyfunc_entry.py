"""MLflow "models from code" entry: the pyfunc is defined by this file, not by a pickled object.

Logging the model by file path means loading it never unpickles a cloudpickled class; the
only pickles loaded are the three joblib artifacts, and only after their sha256 checks.
"""

from mlflow.models import set_model

from sotag.tagger.pyfunc import TaggerPyfunc

set_model(TaggerPyfunc())

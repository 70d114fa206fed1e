"""The seed's way to serve, as a baseline for `make bench-serve`: a pyfunc that runs the
sklearn vectorizer and `OneVsRestClassifier.predict_proba` (one estimator per tag) per request.
Logged as models-from-code; artifacts: vectorizer.joblib, ovr.joblib, mlb.joblib, config.json.
"""

import json

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model

from sotag.tagger.text import clean_question


class SeedTagger(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        d = context.artifacts
        self.vectorizer = joblib.load(d["vectorizer"])
        self.ovr = joblib.load(d["ovr"])
        self.classes = np.asarray(joblib.load(d["mlb"]).classes_)
        with open(d["config"]) as f:
            self.config = json.load(f)

    def predict(self, context, model_input, params=None):
        params = params or {}
        k = int(params.get("top_k", self.config["top_k"]))
        threshold = float(params.get("threshold", self.config["threshold"]))
        repeat = int(self.config.get("extra", {}).get("title_repeat", 1))
        texts = [
            clean_question(t, b or "", title_repeat=repeat)
            for t, b in zip(model_input["title"], model_input["body"], strict=True)
        ]
        scores = self.ovr.predict_proba(self.vectorizer.transform(texts))
        tags, values = [], []
        for row in scores:
            best = np.argsort(-row)[:k]
            best = best[row[best] >= threshold]
            tags.append(self.classes[best].tolist())
            values.append(row[best].round(6).tolist())
        return pd.DataFrame({"tags": tags, "scores": values})


set_model(SeedTagger())

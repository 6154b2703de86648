# The model code of LLMBreaker's MLflow models ("models from code"): loading a registered
# version runs this file, which only names the model class.
import mlflow

from llmb_mlflow.serving import LLMBreakerModel

mlflow.models.set_model(LLMBreakerModel())

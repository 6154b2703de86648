"""Messages users see are one line, and never show a password."""

from llmb_mlflow.errors import LLMBError, shown


def test_a_message_is_one_line_with_passwords_masked():
    error = LLMBError("tracking store postgresql://mlflow:S3cret@db.example.org:5432/mlflow:\n"
                      "  failed (http://u:pa55@h/x?token=abc&user=me)")
    assert str(error) == ("tracking store postgresql://mlflow:***@db.example.org:5432/mlflow: failed "
                          "(http://u:***@h/x?token=***&user=me)")
    assert str(LLMBError("sqlite:////tmp/mlflow.db and http://127.0.0.1:5000/path")) == \
        "sqlite:////tmp/mlflow.db and http://127.0.0.1:5000/path"


def test_what_somebody_sent_is_quoted_short():
    assert shown("abc") == "'abc'"
    assert shown("x" * 100) == "'" + "x" * 56 + "..."
    assert len(shown(list(range(1000)))) == 60

"""Constitutional embeddings: principles as directions in the model's residual stream.

For each principle, a direction is learned from replies that follow it and replies that break it
(difference of means and a logistic probe; the layer is chosen on a validation split) and stored
with the constitution it came from (:class:`ConstitutionalEmbeddings`). Two uses:

- a fast judge (:class:`EmbeddingProbeJudge`): the projection, Platt-calibrated, is P(violation);
- steering (:func:`steering`): a forward hook subtracts the directions of active principles while
  the model generates, with the strength chosen on validation (:func:`choose_alpha`), optionally
  only for the requests the context assessor rates risky enough (:func:`risk_gate`).

And, as learned *input* vectors, soft prompts (:func:`train_soft_prompt`, :func:`soft_prompted`):
prompt tuning on the principles' compliant replies, put before every input at generation time.

>>> from cai2.embeddings import load_examples, train_embeddings
>>> from cai2.models import load_model
>>> model = load_model("hf:smollm2-135m")
>>> embeddings, report = train_embeddings(model, load_examples())  # doctest: +SKIP
"""

from cai2.embeddings._activations import decoder_layers, reply_activations
from cai2.embeddings._data import (
    SPLIT_FRACTIONS,
    PrincipleExample,
    example_split,
    examples_file,
    load_examples,
    split_counts,
    split_examples,
)
from cai2.embeddings._directions import (
    METHODS,
    ConstitutionalEmbeddings,
    PrincipleDirection,
    PrincipleEvaluation,
    TrainingReport,
    auroc,
    evaluate_embeddings,
    summary_auroc,
    train_embeddings,
)
from cai2.embeddings._judge import EmbeddingProbeJudge
from cai2.embeddings._soft import (
    SoftPromptResult,
    SoftPromptSettings,
    own_answer_rows,
    read_soft_prompt_meta,
    soft_prompt_rows,
    soft_prompted,
    train_soft_prompt,
)
from cai2.embeddings._steer import (
    MAX_BENIGN_DROP,
    FluencyCheck,
    Gate,
    SteeringPoint,
    choose_alpha,
    distinct_bigrams,
    generate_steered,
    judge_rates,
    measure_steering,
    reply_nll,
    risk_gate,
    steering,
    steering_vector,
    sweep_alpha,
)

__all__ = [
    "MAX_BENIGN_DROP",
    "METHODS",
    "SPLIT_FRACTIONS",
    "ConstitutionalEmbeddings",
    "EmbeddingProbeJudge",
    "FluencyCheck",
    "Gate",
    "PrincipleDirection",
    "PrincipleEvaluation",
    "PrincipleExample",
    "SoftPromptResult",
    "SoftPromptSettings",
    "SteeringPoint",
    "TrainingReport",
    "auroc",
    "choose_alpha",
    "decoder_layers",
    "distinct_bigrams",
    "evaluate_embeddings",
    "example_split",
    "examples_file",
    "generate_steered",
    "judge_rates",
    "load_examples",
    "measure_steering",
    "own_answer_rows",
    "read_soft_prompt_meta",
    "reply_activations",
    "reply_nll",
    "risk_gate",
    "soft_prompt_rows",
    "soft_prompted",
    "split_counts",
    "split_examples",
    "steering",
    "steering_vector",
    "summary_auroc",
    "sweep_alpha",
    "train_embeddings",
    "train_soft_prompt",
]

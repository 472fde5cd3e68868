"""Model adapters: the contract (:mod:`.base`), the registry of adapter cards (:mod:`.registry`), the baselines that
need no weights (:mod:`.baselines`; semi-supervised VOS: :mod:`.vos_baselines`) and the model families, with what
several share beside them (:mod:`.hf` checkpoints, :mod:`.keyframes`, :mod:`.sam2_video` SAM 2 propagation,
:mod:`.vos_merge` how per-object outputs become a benchmark's masks). Nothing heavy is imported here."""

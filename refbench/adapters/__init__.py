"""Model adapters: the contract (:mod:`.base`), the registry of adapter cards (:mod:`.registry`) and the
baselines that need no weights (:mod:`.baselines`). Nothing heavy is imported here."""

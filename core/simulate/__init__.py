"""Make a clean dataset incomplete on purpose: ``recipe.Recipe``, ``corrupt.simulate``, ``versions.save_simulated``; for token
data ``tokens.save_simulated_tokens`` and ``tokens.grade_token_detector``."""

"""Make a clean dataset incomplete on purpose: ``recipe.Recipe``, ``corrupt.simulate``, ``versions.save_simulated``."""

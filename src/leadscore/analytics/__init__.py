"""Analytics: backtests of a scoring model, predictive scoring, data-driven points,
attribution, and training on any table (scikit-learn, polars)."""

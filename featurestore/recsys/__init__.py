"""Recommenders trained and judged the way they are used (issue #29).

* :mod:`.data` - cleaned transactions as (customer, item, invoice, date) purchases, the time
  windows of the holdout protocol (plan) and the invoice-count matrices;
* :mod:`.evaluate` - recall@k, NDCG@k and hit-rate@k in the two modes (any item; new items
  only) for a model and the "most popular" / "buy again" baselines, with bootstrap intervals
  over customers;
* :mod:`.algorithms` - the learned scorers (implicit ALS, item-kNN, the FM classifier) and the
  repeat-purchase blend;
* :mod:`.artifact` - the servable ``recommender.npz`` every version stores;
* :mod:`.train` - the protocol: choose hyperparameters and the blend weight on a validation
  window, score once on the test window, refit on all data for serving.
"""

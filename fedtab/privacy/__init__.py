"""Record-level differential privacy: one accountant per party, planned noise, DP statistics, DP-SGD.

``accountant`` (PartyAccountant), ``planning`` (PrivacyBudget, plan_noise), ``mechanisms``
(GaussianRelease, partition selection), ``ledger`` (PrivacyLedger), ``dpsgd`` (PrivateTrainer).
Opacus is imported here and nowhere else in fedtab.
"""

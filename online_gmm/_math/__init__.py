"""The math, written once against the array API: the covariance types, the state and
batch statistics, the E-step, the M-step, the variational formulas, the schedules,
array-API helpers and the parameter table. Imports nothing above it."""

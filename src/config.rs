//! Command-line flags (named like kube-controller-manager's) and their validation.

"""Engine code shared by the desks: closed forms and Monte Carlo kernels."""

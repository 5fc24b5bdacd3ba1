"""kipctl: Kernel Inducing Points (KIP), KIP_rho and Label Solve (Nguyen, Chen, Lee, ICLR 2021)."""

__version__ = "0.1.0"

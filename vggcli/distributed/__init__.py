"""Several machines (§3.3): `vgg launch` on MXNet's distributed KVStore, its ssh
launcher, the guard each remote rank runs under, host checks, and the network lab
the cluster tests build."""

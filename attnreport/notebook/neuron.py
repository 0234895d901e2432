"""`neuron_view`: placeholder until written."""


def neuron_view(*args, **kwargs):
    raise NotImplementedError

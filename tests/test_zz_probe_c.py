from tests.test_url_sweep import *  # noqa
from tests.test_url_sweep import world  # noqa

def test_probe(world):
    names = [name for name, params in routed_names().items() if name.startswith("admin:") and not params]
    for n in names:
        a = answer(world.browsers["permitted"].get(reverse(n)))
        if a != 200:
            print("PROBE", n, a)

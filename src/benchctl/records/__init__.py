"""Records a quality manager can trust (ISO/IEC 17025): fitness of references, people and
approval, amendments. The rules live here; storing them is benchctl.store's job."""

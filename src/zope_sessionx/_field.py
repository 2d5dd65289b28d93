"""`zope.schema` field properties that are cheap to read, and the
container settings made of them."""
from zope.schema.fieldproperty import FieldProperty as _FieldProperty
from zope.schema.interfaces import ValidationError

from zope_sessionx.interfaces import InvalidSettingError


_MISSING = object()


class FieldProperty(_FieldProperty):
    """Validates on write, like zope.schema's; reads without binding.

    zope.schema's `FieldProperty` binds its field on every read of a
    value left at its default, which showed as a fifth of the time of
    creating a session.  Fields here have constant defaults, so the
    default is taken once.  *error* turns a validation error into the
    exception raised: it is called with the name, the value and the
    error's description.  With *secret* true, the value is never shown:
    *error* gets ``'<secret>'`` instead, and the validation error (which
    may carry the value) is not chained.
    """

    def __init__(self, field, error, secret=False):
        super().__init__(field)
        self._name = field.__name__
        self._default = field.default
        self._error = error
        self._secret = secret

    def __get__(self, inst, klass):
        if inst is None:
            return self
        value = inst.__dict__.get(self._name, _MISSING)
        if value is _MISSING:
            return self._default
        return value

    def __set__(self, inst, value):
        try:
            super().__set__(inst, value)
        except ValidationError as error:
            if self._secret:
                raise self._error(
                    self._name, '<secret>', error.doc()) from None
            raise self._error(self._name, value, error.doc()) from error


class Setting(FieldProperty):
    """A container setting: validated, refused with `InvalidSettingError`."""

    def __init__(self, field):
        super().__init__(field, InvalidSettingError)


class DueSetting(Setting):
    """A setting that says when sessions are due: changing it works out
    the cleanup schedule anew, in the same transaction."""

    def __set__(self, inst, value):
        old = self.__get__(inst, type(inst))
        super().__set__(inst, value)
        inst._settingsChanged(self._name, old, value)

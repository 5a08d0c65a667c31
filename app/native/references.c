/* The reference side table's rows of one parameter, in C: what
 * app.search_types.row_writers.python_reference_rows appends (the Python stays the reference and
 * the fallback; tests hold the two equal).
 *
 * reference_rows(code, values, out) -> None
 *   values  the parameter's values: a dict whose keys are the tuples
 *           (type, id, reference, version, identifier system, identifier value)
 *   out     the list the rows are appended to, in the dict's order:
 *           (code, type, target_uuid, target_id, reference, identifier system, identifier value)
 * An id that is a UUID as PostgreSQL writes one (36 characters, lower-case hex) goes to
 * target_uuid, any other to target_id (app.search_types.reference.split_target); the reference is
 * None where "type/id" spells it (app.search_types.reference.stored_reference).
 *
 * configure(resource_types, fallback): resource_types() gives the set of R4 resource type names
 * (called once, at the first Reference); fallback is value_tuples.python_reference_object.
 * reference_object(v, d, r) -> None: the converter of a Reference object: the common case, a
 * reference "Type/id" (Type a resource type, id of 1 to 64 id characters) without identifier or
 * type, adds (Type, id, reference, None, None, None) to d here; every other value goes to the
 * fallback, which is what it mirrors. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int is_uuid(PyObject *text)
{
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text) || PyUnicode_GET_LENGTH(text) != 36)
        return 0;
    const unsigned char *c = PyUnicode_1BYTE_DATA(text);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c[i] != '-')
                return 0;
        } else if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* 1 when reference == f"{type}/{id}", 0 when not, -1 on error */
static int spelled_by(PyObject *reference, PyObject *type, PyObject *id)
{
    if (PyUnicode_CheckExact(reference) && PyUnicode_CheckExact(type) && PyUnicode_CheckExact(id)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(type);
        if (PyUnicode_GET_LENGTH(reference) != n + 1 + PyUnicode_GET_LENGTH(id)
            || PyUnicode_READ_CHAR(reference, n) != '/')
            return 0;
        Py_ssize_t head = PyUnicode_Tailmatch(reference, type, 0, n, -1);
        if (head <= 0)
            return (int)head;
        return (int)PyUnicode_Tailmatch(reference, id, n + 1, PY_SSIZE_T_MAX, 1);
    }
    PyObject *spelled = PyUnicode_FromFormat("%S/%S", type, id);
    if (spelled == NULL)
        return -1;
    int equal = PyObject_RichCompareBool(reference, spelled, Py_EQ);
    Py_DECREF(spelled);
    return equal;
}

static PyObject *row_of(PyObject *code, PyObject *value)
{
    if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 6) {
        PyErr_SetString(PyExc_TypeError, "a reference value is a 6-tuple");
        return NULL;
    }
    PyObject *type = PyTuple_GET_ITEM(value, 0), *id = PyTuple_GET_ITEM(value, 1);
    PyObject *reference = PyTuple_GET_ITEM(value, 2);
    int named = PyObject_IsTrue(type);
    if (named > 0)
        named = PyObject_IsTrue(id);
    if (named > 0)
        named = spelled_by(reference, type, id);
    if (named < 0)
        return NULL;
    int uuid = id != Py_None && is_uuid(id);
    return PyTuple_Pack(7, code, type, uuid ? id : Py_None, uuid ? Py_None : id, named ? Py_None : reference,
                        PyTuple_GET_ITEM(value, 4), PyTuple_GET_ITEM(value, 5));
}

static PyObject *reference_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "reference_rows(code, values: dict, out: list)");
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *value, *ignored;
    while (PyDict_Next(args[1], &pos, &value, &ignored)) {
        PyObject *row = row_of(args[0], value);
        if (row == NULL)
            return NULL;
        int failed = PyList_Append(args[2], row);
        Py_DECREF(row);
        if (failed)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *types_of = NULL, *types = NULL, *fallback = NULL;
static PyObject *key_resource_type = NULL, *key_reference = NULL, *key_identifier = NULL, *key_type = NULL;

static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure(resource_types, fallback)");
        return NULL;
    }
    Py_INCREF(args[0]);
    Py_XSETREF(types_of, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(fallback, args[1]);
    Py_CLEAR(types);
    Py_RETURN_NONE;
}

static int is_id_char(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* 1: the row was added, 0: not the common case, -1: error */
static int type_id_row(PyObject *v, PyObject *d)
{
    if (!PyDict_CheckExact(v))
        return 0;
    int present = PyDict_Contains(v, key_resource_type);
    if (present != 0)
        return present < 0 ? -1 : 0;
    PyObject *ref = PyDict_GetItemWithError(v, key_reference); /* borrowed */
    if (ref == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t n = PyUnicode_CheckExact(ref) ? PyUnicode_GET_LENGTH(ref) : 0;
    if (n == 0)
        return 0;
    if ((present = PyDict_Contains(v, key_identifier)) != 0 || (present = PyDict_Contains(v, key_type)) != 0)
        return present < 0 ? -1 : 0;
    Py_ssize_t slash = PyUnicode_FindChar(ref, '/', 0, n, 1);
    if (slash < 0) /* -2 on error */
        return slash == -2 ? -1 : 0;
    Py_ssize_t length = n - slash - 1;
    if (length < 1 || length > 64)
        return 0;
    for (Py_ssize_t i = slash + 1; i < n; i++)
        if (!is_id_char(PyUnicode_READ_CHAR(ref, i)))
            return 0;
    if (types == NULL) {
        PyObject *found = PyObject_CallNoArgs(types_of);
        if (found == NULL)
            return -1;
        if (!PyAnySet_Check(found)) {
            Py_DECREF(found);
            PyErr_SetString(PyExc_TypeError, "resource_types() must give a set");
            return -1;
        }
        types = found;
    }
    PyObject *kind = PyUnicode_Substring(ref, 0, slash);
    if (kind == NULL)
        return -1;
    int known = PySet_Contains(types, kind);
    if (known <= 0) {
        Py_DECREF(kind);
        return known;
    }
    PyObject *id = PyUnicode_Substring(ref, slash + 1, n);
    if (id == NULL) {
        Py_DECREF(kind);
        return -1;
    }
    PyObject *value = PyTuple_Pack(6, kind, id, ref, Py_None, Py_None, Py_None);
    Py_DECREF(kind);
    Py_DECREF(id);
    if (value == NULL)
        return -1;
    int failed = PyDict_SetItem(d, value, Py_None);
    Py_DECREF(value);
    return failed ? -1 : 1;
}

static PyObject *reference_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[1]) || fallback == NULL) {
        PyErr_SetString(PyExc_TypeError, "reference_object(v, d: dict, r) after configure()");
        return NULL;
    }
    int added = type_id_row(args[0], args[1]);
    if (added < 0)
        return NULL;
    if (added)
        Py_RETURN_NONE;
    return PyObject_Vectorcall(fallback, args, 3, NULL);
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, "configure(resource_types, fallback)"},
    {"reference_object", (PyCFunction)(void (*)(void))reference_object, METH_FASTCALL,
     "reference_object(v, d, r) -> None"},
    {"reference_rows", (PyCFunction)(void (*)(void))reference_rows, METH_FASTCALL,
     "reference_rows(code, values, out) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_references", NULL, 0, methods};

PyMODINIT_FUNC PyInit__references(void)
{
    key_resource_type = PyUnicode_InternFromString("resourceType");
    key_reference = PyUnicode_InternFromString("reference");
    key_identifier = PyUnicode_InternFromString("identifier");
    key_type = PyUnicode_InternFromString("type");
    if (key_resource_type == NULL || key_reference == NULL || key_identifier == NULL || key_type == NULL)
        return NULL;
    return PyModule_Create(&module);
}

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
 * None where "type/id" spells it (app.search_types.reference.stored_reference). */

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

static PyMethodDef methods[] = {
    {"reference_rows", (PyCFunction)(void (*)(void))reference_rows, METH_FASTCALL,
     "reference_rows(code, values, out) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_references", NULL, 0, methods};

PyMODINIT_FUNC PyInit__references(void) { return PyModule_Create(&module); }

/* Token values and rows, in C: what app.search_types.value_tuples.python_token_coding and
 * python_token_concept add and
 * app.search_types.row_writers.python_token_rows appends (the Python stays the reference and the
 * fallback; tests hold the two equal).
 *
 * configure(normalize, system_hash, max_chars): normalize is nodes.normalize_string (called for a
 * text that is not ASCII: an ASCII text is lower-cased here, as str.lower does), system_hash
 * protocol.system_hash, max_chars the longest text row (text_document.MAX_CHARS).
 *
 * token_coding(v, d, r) -> None: the converter of a Coding: (system, code, folded display, ()).
 * token_concept(v, d, r) -> None: the converter of a CodeableConcept: each Coding's
 *   (system, code, folded display, ()) and the folded text (None, None, text, ()) as keys of d.
 * token_rows(code, d, o, texts) -> None: the token rows of one parameter's values (the keys of d,
 *   (system, code, text, of_type)) appended to o["token"], and its text row to texts. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *normalize, *system_hash, *empty_tuple, *empty_text, *line_break, *key_token, *key_coding,
    *key_system, *key_code, *key_display, *key_text;
static Py_ssize_t max_chars = 100000;

static PyObject *configure(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "configure(normalize, system_hash, max_chars)");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if (limit < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "configure: max_chars must not be negative");
        return NULL;
    }
    Py_XSETREF(normalize, Py_NewRef(args[0]));
    Py_XSETREF(system_hash, Py_NewRef(args[1]));
    max_chars = limit;
    Py_RETURN_NONE;
}

static int configured(void)
{
    if (normalize == NULL || system_hash == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "app.native tokens: configure() was not called");
        return 0;
    }
    return 1;
}

/* the folded form of a non-empty string (nodes.normalize_string): new reference */
static PyObject *folded(PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text))
        return PyObject_CallOneArg(normalize, text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const Py_UCS1 *from = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t i = 0;
    while (i < n && !(from[i] >= 'A' && from[i] <= 'Z'))
        i++;
    if (i == n && PyUnicode_CheckExact(text))
        return Py_NewRef(text); /* nothing to lower: str.lower's equal */
    PyObject *out = PyUnicode_New(n, 127);
    if (out == NULL)
        return NULL;
    Py_UCS1 *to = PyUnicode_1BYTE_DATA(out);
    for (i = 0; i < n; i++)
        to[i] = from[i] >= 'A' && from[i] <= 'Z' ? from[i] + 32 : from[i];
    return out;
}

/* the member as a non-empty string, or NULL (borrowed) */
static PyObject *text_member(PyObject *object, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(object, key);
    if (value != NULL && PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) > 0)
        return value;
    return NULL;
}

static int add_value(PyObject *d, PyObject *system, PyObject *code, PyObject *text)
{
    PyObject *value = PyTuple_Pack(4, system, code, text, empty_tuple);
    if (value == NULL)
        return -1;
    int failed = PyDict_SetItem(d, value, Py_None);
    Py_DECREF(value);
    return failed;
}

static int add_coding(PyObject *coding, PyObject *d)
{
    PyObject *system = text_member(coding, key_system);
    PyObject *code = text_member(coding, key_code);
    PyObject *display = text_member(coding, key_display);
    if (PyErr_Occurred())
        return -1;
    if (system == NULL && code == NULL && display == NULL)
        return 0;
    PyObject *fold = display != NULL ? folded(display) : Py_NewRef(Py_None);
    if (fold == NULL)
        return -1;
    int failed = add_value(d, system ? system : Py_None, code ? code : Py_None, fold);
    Py_DECREF(fold);
    return failed;
}

static PyObject *token_concept(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "token_concept(v, d, r)");
        return NULL;
    }
    PyObject *v = args[0], *d = args[1];
    if (!configured())
        return NULL;
    if (!PyDict_Check(v) || !PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "token_concept: v and d must be dicts");
        return NULL;
    }
    PyObject *codings = PyDict_GetItemWithError(v, key_coding);
    if (codings == NULL && PyErr_Occurred())
        return NULL;
    if (codings != NULL && PyList_Check(codings)) {
        Py_INCREF(codings);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(codings); i++) {
            PyObject *c = PyList_GET_ITEM(codings, i);
            if (PyDict_Check(c) && add_coding(c, d) < 0) {
                Py_DECREF(codings);
                return NULL;
            }
        }
        Py_DECREF(codings);
    } else if (codings != NULL && PyDict_Check(codings) && add_coding(codings, d) < 0) {
        return NULL;
    }
    PyObject *text = text_member(v, key_text);
    if (text == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    PyObject *fold = folded(text);
    if (fold == NULL)
        return NULL;
    int failed = PyObject_IsTrue(fold) > 0 ? add_value(d, Py_None, Py_None, fold) : 0;
    Py_DECREF(fold);
    return failed ? NULL : Py_NewRef(Py_None);
}

static PyObject *token_coding(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "token_coding(v, d, r)");
        return NULL;
    }
    if (!configured())
        return NULL;
    if (!PyDict_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "token_coding: v and d must be dicts");
        return NULL;
    }
    return add_coding(args[0], args[1]) < 0 ? NULL : Py_NewRef(Py_None);
}

/* f"{s or ''}|{c or ''}": new reference */
static PyObject *typed_code(PyObject *pair)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_ValueError, "token_rows: a type coding is not a (system, code) pair");
        return NULL;
    }
    PyObject *parts[2];
    for (int i = 0; i < 2; i++) {
        PyObject *item = PyTuple_GET_ITEM(pair, i);
        int truth = PyObject_IsTrue(item);
        if (truth < 0)
            return NULL;
        parts[i] = PyObject_Format(truth ? item : empty_text, empty_text);
        if (parts[i] == NULL) {
            if (i)
                Py_DECREF(parts[0]);
            return NULL;
        }
    }
    PyObject *out = PyUnicode_FromFormat("%U|%U", parts[0], parts[1]);
    Py_DECREF(parts[0]);
    Py_DECREF(parts[1]);
    return out;
}

static int append_row(PyObject *rows, PyObject *code, PyObject *hash, PyObject *value, PyObject *of_type)
{
    PyObject *row = PyTuple_Pack(4, code, hash, value, of_type);
    if (row == NULL)
        return -1;
    int failed = PyList_Append(rows, row);
    Py_DECREF(row);
    return failed;
}

static PyObject *cut(PyObject *text)
{
    if (PyUnicode_Check(text) && PyUnicode_GET_LENGTH(text) > max_chars)
        return PyUnicode_Substring(text, 0, max_chars);
    return Py_NewRef(text);
}

/* (code, text of the parts: each distinct one once, joined by line breaks, cut) appended to texts */
static int append_text(PyObject *texts, PyObject *code, PyObject *parts)
{
    PyObject *joined;
    if (PyList_GET_SIZE(parts) == 1) {
        joined = cut(PyList_GET_ITEM(parts, 0));
    } else {
        PyObject *distinct = PyDict_New();
        if (distinct == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
            if (PyDict_SetItem(distinct, PyList_GET_ITEM(parts, i), Py_None) < 0) {
                Py_DECREF(distinct);
                return -1;
            }
        }
        PyObject *whole = PyUnicode_Join(line_break, distinct);
        Py_DECREF(distinct);
        if (whole == NULL)
            return -1;
        joined = cut(whole);
        Py_DECREF(whole);
    }
    if (joined == NULL)
        return -1;
    PyObject *row = PyTuple_Pack(2, code, joined);
    Py_DECREF(joined);
    if (row == NULL)
        return -1;
    int failed = PyList_Append(texts, row);
    Py_DECREF(row);
    return failed;
}

static int value_rows(PyObject *value, PyObject *code, PyObject *rows, PyObject *parts)
{
    if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 4) {
        PyErr_SetString(PyExc_ValueError, "token_rows: a value is not (system, code, text, of_type)");
        return -1;
    }
    PyObject *system = PyTuple_GET_ITEM(value, 0), *token = PyTuple_GET_ITEM(value, 1);
    PyObject *text = PyTuple_GET_ITEM(value, 2), *of_type = PyTuple_GET_ITEM(value, 3);
    int typed = PyObject_IsTrue(of_type);
    if (typed < 0)
        return -1;
    if (typed || system != Py_None || token != Py_None) {
        PyObject *hash = PyObject_CallOneArg(system_hash, system);
        if (hash == NULL)
            return -1;
        int failed = 0;
        if (!typed) {
            failed = append_row(rows, code, hash, token, Py_None);
        } else {
            PyObject *pairs = PySequence_Fast(of_type, "token_rows: of_type is not a sequence");
            failed = pairs == NULL;
            for (Py_ssize_t i = 0; !failed && i < PySequence_Fast_GET_SIZE(pairs); i++) {
                PyObject *typed_text = typed_code(PySequence_Fast_GET_ITEM(pairs, i));
                failed = typed_text == NULL || append_row(rows, code, hash, token, typed_text) < 0;
                Py_XDECREF(typed_text);
            }
            Py_XDECREF(pairs);
        }
        Py_DECREF(hash);
        if (failed)
            return -1;
    }
    int has_text = PyObject_IsTrue(text);
    if (has_text < 0)
        return -1;
    return has_text ? PyList_Append(parts, text) : 0;
}

static PyObject *token_rows(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "token_rows(code, d, o, texts)");
        return NULL;
    }
    PyObject *code = args[0], *d = args[1], *o = args[2], *texts = args[3];
    if (!configured())
        return NULL;
    PyObject *rows = PyObject_GetItem(o, key_token);
    if (rows == NULL)
        return NULL;
    PyObject *parts = PyList_New(0);
    PyObject *values = parts == NULL ? NULL : PyObject_GetIter(d);
    if (values == NULL || !PyList_Check(rows)) {
        if (values != NULL)
            PyErr_SetString(PyExc_TypeError, "token_rows: o['token'] is not a list");
        Py_XDECREF(values);
        Py_XDECREF(parts);
        Py_DECREF(rows);
        return NULL;
    }
    Py_ssize_t start = PyList_GET_SIZE(rows), seen = 0;
    PyObject *value;
    int failed = 0;
    while (!failed && (value = PyIter_Next(values)) != NULL) {
        seen++;
        failed = value_rows(value, code, rows, parts) < 0;
        Py_DECREF(value);
    }
    Py_DECREF(values);
    failed = failed || PyErr_Occurred();
    if (!failed && PyList_GET_SIZE(rows) == start && seen)
        failed = append_row(rows, code, Py_None, Py_None, Py_None) < 0;
    if (!failed && PyList_GET_SIZE(parts))
        failed = append_text(texts, code, parts) < 0;
    Py_DECREF(parts);
    Py_DECREF(rows);
    return failed ? NULL : Py_NewRef(Py_None);
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(normalize, system_hash, max_chars)"},
    {"token_coding", (PyCFunction)(void (*)(void))token_coding, METH_FASTCALL, "token_coding(v, d, r) -> None"},
    {"token_concept", (PyCFunction)(void (*)(void))token_concept, METH_FASTCALL, "token_concept(v, d, r) -> None"},
    {"token_rows", (PyCFunction)(void (*)(void))token_rows, METH_FASTCALL, "token_rows(code, d, o, texts) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tokens", NULL, 0, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tokens(void)
{
    empty_tuple = PyTuple_New(0);
    empty_text = PyUnicode_FromString("");
    line_break = PyUnicode_FromString("\n");
    key_token = PyUnicode_InternFromString("token");
    key_coding = PyUnicode_InternFromString("coding");
    key_system = PyUnicode_InternFromString("system");
    key_code = PyUnicode_InternFromString("code");
    key_display = PyUnicode_InternFromString("display");
    key_text = PyUnicode_InternFromString("text");
    if (empty_tuple == NULL || empty_text == NULL || line_break == NULL || key_token == NULL
        || key_coding == NULL || key_system == NULL || key_code == NULL || key_display == NULL || key_text == NULL)
        return NULL;
    return PyModule_Create(&module);
}

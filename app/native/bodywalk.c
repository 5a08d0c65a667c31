/* Walks of a parsed request body, in C: what app.commands.references.python_sites and
 * app.api.json_body.python_colons compute (the Python stays the reference and the fallback; tests
 * hold the two equal).
 *
 * sites(value, urls, site) -> list
 *   every string of value (at any depth, in document order) that is local ("urn:..."), holds a
 *   "?" or is in urls (any container), as site(path, string, reference): path the tuple of keys
 *   and list indexes leading to it, reference whether its key is "reference" (a subclass of tuple
 *   is made as tuple.__new__(site, (path, string, reference)) makes it, without calling Python
 *   code; anything else is called). Only exact dicts,
 *   lists and strings are walked or taken, as the Python's type() tests.
 *
 * colons(value) -> int
 *   the colons orjson.dumps(value) writes: one per key of every object, and those inside keys and
 *   strings (orjson writes a colon as itself). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 4096 /* deeper than any body orjson parses (1024) */

typedef struct {
    PyObject *key;     /* borrowed: the key of an object, or NULL for a list index */
    Py_ssize_t index;
} Step;

typedef struct {
    PyObject *urls; /* NULL when empty */
    PyObject *site;
    int tuple_site; /* site is a subclass of tuple */
    PyObject *out;
    Step trail[MAX_DEPTH];
    int depth;
} Walk;

static PyObject *key_reference, *urn_prefix;

/* 1 when text may be rewritten, 0 when not, -1 on error */
static int wanted(PyObject *text, PyObject *urls)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t local = PyUnicode_Tailmatch(text, urn_prefix, 0, n, -1);
    if (local != 0)
        return (int)local; /* 1, or -1 on error */
    Py_ssize_t mark = PyUnicode_FindChar(text, '?', 0, n, 1);
    if (mark == -2)
        return -1;
    if (mark >= 0)
        return 1;
    return urls == NULL ? 0 : PySequence_Contains(urls, text);
}

static PyObject *path_of(Walk *w, PyObject *last_key, Py_ssize_t last_index)
{
    PyObject *path = PyTuple_New(w->depth + 1);
    if (path == NULL)
        return NULL;
    for (int i = 0; i <= w->depth; i++) {
        PyObject *key = i < w->depth ? w->trail[i].key : last_key;
        Py_ssize_t index = i < w->depth ? w->trail[i].index : last_index;
        PyObject *step;
        if (key != NULL) {
            Py_INCREF(key);
            step = key;
        } else {
            step = PyLong_FromSsize_t(index);
            if (step == NULL) {
                Py_DECREF(path);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(path, i, step);
    }
    return path;
}

static int add_site(Walk *w, PyObject *key, Py_ssize_t index, PyObject *text)
{
    int take = wanted(text, w->urls);
    if (take <= 0)
        return take;
    PyObject *path = path_of(w, key, index);
    if (path == NULL)
        return -1;
    int reference = 0;
    if (key != NULL) {
        reference = PyUnicode_Compare(key, key_reference) == 0;
        if (reference == 0 && PyErr_Occurred())
            PyErr_Clear(); /* a key that is not a string: not "reference" */
    }
    PyObject *flag = reference ? Py_True : Py_False, *site;
    if (w->tuple_site) { /* a tuple subclass (a NamedTuple): made as tuple.__new__ makes it */
        site = ((PyTypeObject *)w->site)->tp_alloc((PyTypeObject *)w->site, 3);
        if (site == NULL) {
            Py_DECREF(path);
            return -1;
        }
        Py_INCREF(text);
        Py_INCREF(flag);
        PyTuple_SET_ITEM(site, 0, path);
        PyTuple_SET_ITEM(site, 1, text);
        PyTuple_SET_ITEM(site, 2, flag);
    } else {
        site = PyObject_CallFunctionObjArgs(w->site, path, text, flag, NULL);
        Py_DECREF(path);
        if (site == NULL)
            return -1;
    }
    int failed = PyList_Append(w->out, site);
    Py_DECREF(site);
    return failed;
}

static int walk(Walk *w, PyObject *value);

static int step_into(Walk *w, PyObject *key, Py_ssize_t index, PyObject *item)
{
    if (PyUnicode_CheckExact(item))
        return add_site(w, key, index, item);
    if (!PyDict_CheckExact(item) && !PyList_CheckExact(item))
        return 0;
    if (w->depth >= MAX_DEPTH) {
        PyErr_SetString(PyExc_RecursionError, "the body is nested too deeply");
        return -1;
    }
    w->trail[w->depth].key = key;
    w->trail[w->depth].index = index;
    w->depth++;
    int failed = walk(w, item);
    w->depth--;
    return failed;
}

static int walk(Walk *w, PyObject *value)
{
    if (PyDict_CheckExact(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            Py_INCREF(key);
            Py_INCREF(item);
            int failed = step_into(w, key, 0, item);
            Py_DECREF(item);
            Py_DECREF(key);
            if (failed)
                return -1;
        }
    } else if (PyList_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            PyObject *item = PyList_GET_ITEM(value, i);
            Py_INCREF(item);
            int failed = step_into(w, NULL, i, item);
            Py_DECREF(item);
            if (failed)
                return -1;
        }
    }
    return 0;
}

static PyObject *sites(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sites(value, urls, site)");
        return NULL;
    }
    Walk *w = PyMem_Malloc(sizeof(Walk));
    if (w == NULL)
        return PyErr_NoMemory();
    Py_ssize_t size = PyObject_Size(args[1]);
    if (size < 0) {
        PyErr_Clear(); /* a container without a size: asked string by string */
        size = 1;
    }
    w->urls = size ? args[1] : NULL; /* an empty container holds no string: none is hashed for it */
    w->site = args[2];
    w->tuple_site = PyType_Check(args[2]) && PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type);
    w->depth = 0;
    w->out = PyList_New(0);
    if (w->out == NULL || walk(w, args[0]) != 0) {
        Py_XDECREF(w->out);
        PyMem_Free(w);
        return NULL;
    }
    PyObject *out = w->out;
    PyMem_Free(w);
    return out;
}

static Py_ssize_t colons_in(PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), count = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        const char *c = data, *end = c + n;
        while ((c = memchr(c, ':', end - c)) != NULL) {
            count++;
            c++;
        }
        return count;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        count += PyUnicode_READ(kind, data, i) == ':';
    return count;
}

static Py_ssize_t count_colons(PyObject *value, int depth)
{
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_RecursionError, "the body is nested too deeply");
        return -1;
    }
    Py_ssize_t count = 0;
    if (PyUnicode_Check(value))
        return colons_in(value);
    if (PyDict_Check(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            Py_ssize_t inner = count_colons(item, depth + 1);
            if (inner < 0)
                return -1;
            count += 1 + inner + (PyUnicode_Check(key) ? colons_in(key) : 0);
        }
    } else if (PyList_Check(value)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            Py_ssize_t inner = count_colons(PyList_GET_ITEM(value, i), depth + 1);
            if (inner < 0)
                return -1;
            count += inner;
        }
    }
    return count;
}

static PyObject *colons(PyObject *Py_UNUSED(self), PyObject *value)
{
    Py_ssize_t count = count_colons(value, 0);
    return count < 0 ? NULL : PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"sites", (PyCFunction)(void (*)(void))sites, METH_FASTCALL, "sites(value, urls, site) -> list"},
    {"colons", colons, METH_O, "colons(value) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bodywalk", NULL, 0, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bodywalk(void)
{
    key_reference = PyUnicode_InternFromString("reference");
    urn_prefix = PyUnicode_InternFromString("urn:");
    if (key_reference == NULL || urn_prefix == NULL)
        return NULL;
    return PyModule_Create(&module);
}

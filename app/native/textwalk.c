/* The prose of a resource for _content, in C: app.search_types.text_document.content_text's walk
 * (the Python function stays the reference and the fallback; tests hold the two equal).
 *
 * content_text(resource, not_content, skipped, max_chars) -> str
 *   resource     the parsed resource (dicts, lists, strings, numbers, booleans, None)
 *   not_content  the top-level keys left out (a frozenset: the narrative, meta, ids…)
 *   skipped      the keys left out below the top level (a frozenset)
 *   max_chars    the characters kept
 * not_prose(text) -> bool: whether a string is left out as not prose, a date, a URI or a UUID: what
 * text_document._NOT_PROSE fullmatches,
 *   \d{4}(-\d\d(-\d\d([T ][\d:.]+(Z|[+-]\d\d:\d\d)?)?)?)?|(https?|urn|ftp|file):\S*
 *   |[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}
 * (\d a decimal digit of any script, \S anything but whitespace, as Python's re reads them).
 * The distinct strings, in the order they first occur, joined by newlines, cut at max_chars.
 * Only dict, list and str (and their subclasses) hold prose; other values are left out, as the
 * Python walk leaves them. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    PyObject *skipped;   /* frozenset */
    PyObject *seen;      /* dict: distinct strings in order */
    Py_ssize_t size;     /* characters of the distinct strings, a separator each */
    Py_ssize_t max_chars;
    int depth;
} Walk;

#define MAX_DEPTH 2000 /* orjson parses 1,024 levels at most; the Python walk stops near 1,000 */

static int walk_value(Walk *w, PyObject *value);

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n, i;
} Text;

static int digits(Text *t, Py_ssize_t count)
{
    for (Py_ssize_t k = 0; k < count; k++, t->i++)
        if (t->i >= t->n || !Py_UNICODE_ISDECIMAL(PyUnicode_READ(t->kind, t->data, t->i)))
            return 0;
    return 1;
}

static int next_is(Text *t, Py_UCS4 c)
{
    if (t->i < t->n && PyUnicode_READ(t->kind, t->data, t->i) == c) {
        t->i++;
        return 1;
    }
    return 0;
}

/* a date, dateTime or instant's shape: \d{4}(-\d\d(-\d\d([T ][\d:.]+(Z|[+-]\d\d:\d\d)?)?)?)? */
static int is_date(Text *t)
{
    if (!digits(t, 4))
        return 0;
    if (t->i == t->n)
        return 1;
    if (!next_is(t, '-') || !digits(t, 2))
        return 0;
    if (t->i == t->n)
        return 1;
    if (!next_is(t, '-') || !digits(t, 2))
        return 0;
    if (t->i == t->n)
        return 1;
    if (!next_is(t, 'T') && !next_is(t, ' '))
        return 0;
    Py_ssize_t start = t->i;
    while (t->i < t->n) {
        Py_UCS4 c = PyUnicode_READ(t->kind, t->data, t->i);
        if (c != ':' && c != '.' && !Py_UNICODE_ISDECIMAL(c))
            break;
        t->i++;
    }
    if (t->i == start)
        return 0;
    if (t->i == t->n || (next_is(t, 'Z') && t->i == t->n))
        return 1;
    if (!next_is(t, '+') && !next_is(t, '-'))
        return 0;
    return digits(t, 2) && next_is(t, ':') && digits(t, 2) && t->i == t->n;
}

/* a URI's shape: (https?|urn|ftp|file):\S* */
static int is_uri(Text *t)
{
    static const char *schemes[] = {"http:", "https:", "urn:", "ftp:", "file:"};
    for (size_t k = 0; k < sizeof schemes / sizeof *schemes; k++) {
        Py_ssize_t length = (Py_ssize_t)strlen(schemes[k]);
        if (t->n < length)
            continue;
        Py_ssize_t j = 0;
        while (j < length && PyUnicode_READ(t->kind, t->data, j) == (Py_UCS4)schemes[k][j])
            j++;
        if (j < length)
            continue;
        for (; j < t->n; j++)
            if (Py_UNICODE_ISSPACE(PyUnicode_READ(t->kind, t->data, j)))
                return 0;
        return 1;
    }
    return 0;
}

/* a UUID's shape: [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12} */
static int is_uuid(Text *t)
{
    if (t->n != 36)
        return 0;
    for (Py_ssize_t j = 0; j < 36; j++) {
        Py_UCS4 c = PyUnicode_READ(t->kind, t->data, j);
        if (j == 8 || j == 13 || j == 18 || j == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static int is_not_prose(PyObject *s)
{
    Text t = {PyUnicode_KIND(s), PyUnicode_DATA(s), PyUnicode_GET_LENGTH(s), 0};
    if (is_date(&t))
        return 1;
    t.i = 0;
    return is_uri(&t) || is_uuid(&t);
}

/* 1: done (the text is complete), 0: go on, -1: error */
static int add_string(Walk *w, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0)
        return 0;
    /* the Python walk asks the pattern only of a string starting with a digit or holding a ':',
     * which every string it matches does: asked of every string, it answers alike (and fails at
     * the first character or the scheme, where a scan for ':' would read the whole string) */
    if (is_not_prose(s))
        return 0;
    Py_ssize_t before = PyDict_GET_SIZE(w->seen); /* as dict.fromkeys: a str subclass is its own key */
    if (PyDict_SetDefault(w->seen, s, Py_None) == NULL) /* one lookup, whether or not it is new */
        return -1;
    if (PyDict_GET_SIZE(w->seen) > before)
        w->size += n + 1;
    return w->size > w->max_chars ? 1 : 0;
}

static int walk_members(Walk *w, PyObject *dict)
{
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    while (PyDict_Next(dict, &pos, &key, &item)) {
        int skip = PySet_Contains(w->skipped, key);
        if (skip < 0)
            return -1;
        if (skip)
            continue;
        int r = walk_value(w, item);
        if (r != 0)
            return r;
    }
    return 0;
}

static int walk_elements(Walk *w, PyObject *list)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *element = PyList_GET_ITEM(list, i);
        Py_INCREF(element); /* a str subclass's not_prose could change the list */
        int r = walk_value(w, element);
        Py_DECREF(element);
        if (r != 0)
            return r;
    }
    return 0;
}

static int walk_value(Walk *w, PyObject *value)
{
    if (PyUnicode_Check(value))
        return add_string(w, value);
    if (!PyDict_Check(value) && !PyList_Check(value))
        return 0;
    if (++w->depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_RecursionError, "a resource nested too deep for its text");
        return -1;
    }
    int r = PyDict_Check(value) ? walk_members(w, value) : walk_elements(w, value);
    w->depth--;
    return r;
}

static PyObject *content_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "content_text(resource, not_content, skipped, max_chars)");
        return NULL;
    }
    PyObject *resource = args[0], *not_content = args[1];
    if (!PyDict_Check(resource) || !PyAnySet_Check(not_content) || !PyAnySet_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "content_text: a dict and two sets");
        return NULL;
    }
    Py_ssize_t max_chars = PyLong_AsSsize_t(args[3]);
    if (max_chars < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "content_text: max_chars < 0");
        return NULL;
    }
    Walk w = {args[2], PyDict_New(), 0, max_chars, 0};
    if (w.seen == NULL)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *item, *out = NULL;
    while (PyDict_Next(resource, &pos, &key, &item)) {
        int skip = PySet_Contains(not_content, key);
        if (skip < 0)
            goto done;
        if (skip)
            continue;
        int r = walk_value(&w, item);
        if (r < 0)
            goto done;
        if (r > 0)
            break;
    }
    PyObject *separator = PyUnicode_FromOrdinal('\n');
    if (separator == NULL)
        goto done;
    PyObject *joined = PyUnicode_Join(separator, w.seen); /* iterates the keys, in order */
    Py_DECREF(separator);
    if (joined == NULL || PyUnicode_GET_LENGTH(joined) <= max_chars) {
        out = joined;
        goto done;
    }
    out = PyUnicode_Substring(joined, 0, max_chars);
    Py_DECREF(joined);
done:
    Py_DECREF(w.seen);
    return out;
}

static PyObject *not_prose(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "not_prose(text: str)");
        return NULL;
    }
    return PyBool_FromLong(is_not_prose(text));
}

static PyMethodDef methods[] = {
    {"content_text", (PyCFunction)(void (*)(void))content_text, METH_FASTCALL,
     "content_text(resource, not_content, skipped, max_chars) -> str"},
    {"not_prose", not_prose, METH_O, "not_prose(text) -> bool"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_textwalk", NULL, 0, methods};

PyMODINIT_FUNC PyInit__textwalk(void) { return PyModule_Create(&module); }

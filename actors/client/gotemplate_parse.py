"""Lexer and parser of the Go text/template subset (see actors.client.gotemplate)."""

LEFT = "{{"
RIGHT = "}}"


class TemplateError(Exception):
    pass



# --------------------------------------------------------------------------- lexer


class Token:
    __slots__ = ("adjacent", "column", "kind", "line", "raw", "value")

    def __init__(self, kind: str, value, line: int) -> None:
        self.kind = kind
        self.value = value
        self.line = line
        # True when no space separates this token from the previous one: `$x.A`, `(p).A`.
        self.adjacent = False
        self.column = 0
        self.raw = str(value)

    def __repr__(self) -> str:
        return f"{self.kind}:{self.value!r}"


_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break",
             "continue", "nil", "true", "false"}
_SPACE = " \t\r\n"


def _lex(source: str) -> list:
    """Split the source into ("text", str) and ("action", [tokens], line) pieces."""
    pieces: list = []
    position = 0
    line = 1
    trim_next = False
    while position <= len(source):
        start = source.find(LEFT, position)
        if start < 0:
            text = source[position:]
            if trim_next:
                text = text.lstrip(_SPACE)
            if text:
                pieces.append(("text", text))
            break
        text = source[position:start]
        inner_start = start + 2
        trim_before = source.startswith("- ", inner_start) or (
            source.startswith("-", inner_start)
            and inner_start + 1 < len(source)
            and source[inner_start + 1] in _SPACE
        )
        if trim_next:
            text = text.lstrip(_SPACE)
        if trim_before:
            text = text.rstrip(_SPACE)
            inner_start += 2
        if text:
            pieces.append(("text", text))
        line += source.count("\n", position, start)
        action_line = line
        tokens, end, trim_next = _lex_action(source, inner_start, action_line)
        line += source.count("\n", start, end)
        if tokens is not None:
            pieces.append(("action", tokens, action_line))
        position = end
        if position == len(source):
            break
    return pieces


def _lex_action(source: str, position: int, line: int):
    """Tokenize one action from `position`; return (tokens|None for a comment, end, trim)."""
    tokens: list[Token] = []
    length = len(source)
    while True:
        spaced_from = position
        while position < length and source[position] in _SPACE:
            position += 1
        adjacent = position == spaced_from
        count_before = len(tokens)
        token_start = position
        if source.startswith("/*", position):
            close = source.find("*/", position + 2)
            if close < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            position = close + 2
            if tokens:
                raise TemplateError(f"template: :{line}: comment ends before closing delimiter")
            while position < length and source[position] in _SPACE:
                position += 1
            if source.startswith("-" + RIGHT, position):
                return None, position + 3, True
            if source.startswith(RIGHT, position):
                return None, position + 2, False
            raise TemplateError(f"template: :{line}: comment ends before closing delimiter")
        if position >= length:
            raise TemplateError(f"template: :{line}: unclosed action")
        if source.startswith("-" + RIGHT, position) and source[position - 1] in _SPACE:
            return tokens, position + 3, True
        if source.startswith(RIGHT, position):
            return tokens, position + 2, False
        char = source[position]
        if char == "\n":
            raise TemplateError(f"template: :{line}: unclosed action")
        if char in "()|,":
            tokens.append(Token(char, char, line))
            position += 1
        elif source.startswith(":=", position):
            tokens.append(Token(":=", ":=", line))
            position += 2
        elif char == "=":
            tokens.append(Token("=", "=", line))
            position += 1
        elif char == '"':
            value, position = _lex_quoted(source, position, line)
            tokens.append(Token("literal", value, line))
        elif char == "`":
            close = source.find("`", position + 1)
            if close < 0:
                raise TemplateError(f"template: :{line}: unterminated raw quoted string")
            tokens.append(Token("literal", source[position + 1 : close], line))
            position = close + 1
        elif char == "'":
            value, position = _lex_quoted(source, position, line, quote="'")
            if len(value) != 1:
                raise TemplateError(f"template: :{line}: malformed character constant")
            tokens.append(Token("literal", ord(value), line))
        elif char == "." and (position + 1 >= length or not source[position + 1].isdigit()):
            end = position + 1
            while end < length and (source[end].isalnum() or source[end] == "_"):
                end += 1
            name = source[position + 1 : end]
            tokens.append(Token("field", name, line) if name else Token("dot", ".", line))
            position = end
        elif char == "$":
            end = position + 1
            while end < length and (source[end].isalnum() or source[end] == "_"):
                end += 1
            tokens.append(Token("variable", source[position:end], line))
            position = end
        elif char.isdigit() or (char in "+-." and position + 1 < length
                                and source[position + 1].isdigit()):
            end = position + 1
            while end < length and (source[end].isalnum() or source[end] in "._+-"):
                if source[end] in "+-" and source[end - 1] not in "eEpP":
                    break
                end += 1
            tokens.append(Token("literal", _parse_number(source[position:end], line), line))
            position = end
        elif char.isalpha() or char == "_":
            end = position + 1
            while end < length and (source[end].isalnum() or source[end] == "_"):
                end += 1
            word = source[position:end]
            if word in ("true", "false"):
                tokens.append(Token("literal", word == "true", line))
            elif word == "nil":
                tokens.append(Token("nil", None, line))
            elif word in _KEYWORDS:
                tokens.append(Token("keyword", word, line))
            else:
                tokens.append(Token("identifier", word, line))
            position = end
        else:
            raise TemplateError(f"template: :{line}: unexpected {char!r} in command")
        if len(tokens) > count_before:
            token = tokens[-1]
            token.adjacent = adjacent
            token.column = token_start - (source.rfind("\n", 0, token_start) + 1)
            token.raw = source[token_start:position]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _lex_quoted(source: str, position: int, line: int, quote: str = '"'):
    out = []
    index = position + 1
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            following = source[index + 1]
            if following == "x" and index + 3 < len(source):
                out.append(chr(int(source[index + 2 : index + 4], 16)))
                index += 4
                continue
            if following == "u" and index + 5 < len(source):
                out.append(chr(int(source[index + 2 : index + 6], 16)))
                index += 6
                continue
            if following not in _ESCAPES:
                raise TemplateError(f"template: :{line}: unknown escape sequence")
            out.append(_ESCAPES[following])
            index += 2
            continue
        if char == quote:
            return "".join(out), index + 1
        if char == "\n":
            break
        out.append(char)
        index += 1
    raise TemplateError(f"template: :{line}: unterminated quoted string")


def _parse_number(text: str, line: int):
    cleaned = text.replace("_", "")
    try:
        if cleaned.lower().startswith(("0x", "-0x", "+0x")):
            return int(cleaned, 16)
        if any(char in cleaned for char in ".eE"):
            return float(cleaned)
        return int(cleaned)
    except ValueError:
        raise TemplateError(f"template: :{line}: bad number syntax: {text!r}") from None


# --------------------------------------------------------------------------- parser


class Pipeline:
    __slots__ = ("assign", "commands", "declare", "line", "source", "variables")

    def __init__(self, variables, declare, assign, commands, line, source):
        self.variables = variables
        self.declare = declare
        self.assign = assign
        self.commands = commands
        self.line = line
        self.source = source


class Chain:
    """An operand followed by field accesses: `(pipeline).A.B`, `$x.A`."""

    __slots__ = ("base", "column", "fields", "line", "text")

    def __init__(self, base, fields, text="", line=1, column=0):
        self.base = base
        self.fields = fields
        self.text = text
        self.line = line
        self.column = column


class CommandNode(list):
    """The operands of one command of a pipeline, with its text and position for errors."""

    text = ""
    line = 1
    column = 0


def _tokens_text(tokens: list) -> str:
    parts = []
    for index, token in enumerate(tokens):
        if index and not token.adjacent:
            parts.append(" ")
        parts.append(token.raw)
    return "".join(parts)


class Parser:
    def __init__(self, source: str) -> None:
        self.pieces = _lex(source)
        self.index = 0

    def parse(self) -> list:
        nodes, stop = self._parse_list()
        if stop is not None:
            keyword, line = stop
            raise TemplateError(f"template: :{line}: unexpected {{{{{keyword}}}}}")
        return nodes

    def _parse_list(self):
        """Parse nodes until `end`/`else` (returned as the stop marker) or the end."""
        nodes: list = []
        while self.index < len(self.pieces):
            piece = self.pieces[self.index]
            self.index += 1
            if piece[0] == "text":
                nodes.append(("text", piece[1]))
                continue
            tokens, line = piece[1], piece[2]
            if not tokens:
                raise TemplateError(f"template: :{line}: missing value for command")
            head = tokens[0]
            if head.kind == "keyword":
                word = head.value
                if word == "end":
                    if len(tokens) > 1:
                        raise TemplateError(f"template: :{line}: unexpected {tokens[1].value} in end")
                    return nodes, ("end", line)
                if word == "else":
                    return nodes, ("else", line, tokens[1:])
                if word in ("if", "range", "with"):
                    nodes.append(self._parse_control(word, tokens[1:], line))
                    continue
                if word in ("break", "continue"):
                    nodes.append((word, line))
                    continue
                if word in ("define", "template", "block"):
                    raise TemplateError(f"template: :{line}: {{{{{word}}}}} is not supported")
            nodes.append(("action", self._parse_pipeline(tokens, line, declarations=True)))
        return nodes, None

    def _parse_control(self, word: str, tokens: list, line: int):
        if not tokens:
            raise TemplateError(f"template: :{line}: missing value for {word}")
        pipeline = self._parse_pipeline(tokens, line, declarations=True, in_range=word == "range")
        body, stop = self._parse_list()
        else_body: list = []
        if stop is None:
            raise TemplateError(f"template: :{line}: unexpected EOF")
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "keyword" and rest[0].value in ("if", "with"):
                # `else if` / `else with`: a nested control sharing this one's `end`.
                else_body = [self._parse_control(rest[0].value, rest[1:], stop[1])]
                return (word, pipeline, body, else_body)
            if rest:
                raise TemplateError(f"template: :{stop[1]}: unexpected {rest[0].value} in else")
            else_body, stop = self._parse_list()
            if stop is None or stop[0] != "end":
                raise TemplateError(f"template: :{line}: expected end; found {stop and stop[0]}")
        return (word, pipeline, body, else_body)

    def _parse_pipeline(self, tokens: list, line: int, declarations=False, in_range=False):
        source = " ".join(str(token.value) for token in tokens)
        variables: list[str] = []
        declare = assign = False
        if declarations and tokens and tokens[0].kind == "variable":
            # `$x :=`, `$x =`, or (range only) `$i, $v :=`.
            if len(tokens) > 1 and tokens[1].kind in (":=", "="):
                variables = [tokens[0].value]
                declare = tokens[1].kind == ":="
                assign = not declare
                tokens = tokens[2:]
            elif (in_range and len(tokens) > 3 and tokens[1].kind == ","
                  and tokens[2].kind == "variable" and tokens[3].kind in (":=", "=")):
                variables = [tokens[0].value, tokens[2].value]
                declare = tokens[3].kind == ":="
                assign = not declare
                tokens = tokens[4:]
        commands = []
        current = CommandNode()
        start = 0
        position = 0

        def finish(end: int) -> None:
            span = tokens[start:end]
            current.text = _tokens_text(span)
            if span:
                current.line, current.column = span[0].line, span[0].column
            commands.append(current)

        while position < len(tokens):
            token = tokens[position]
            if token.kind == "|":
                if not current:
                    raise TemplateError(f"template: :{line}: missing command before |")
                finish(position)
                current = CommandNode()
                position += 1
                start = position
                continue
            operand, position = self._parse_operand(tokens, position, line)
            current.append(operand)
        if current:
            finish(position)
        elif commands:
            raise TemplateError(f"template: :{line}: missing command after |")
        if not commands:
            raise TemplateError(f"template: :{line}: missing value for command")
        return Pipeline(variables, declare, assign, commands, line, source)

    def _parse_operand(self, tokens: list, position: int, line: int):
        begin = position
        token = tokens[position]
        position += 1
        if token.kind == "(":
            depth = 1
            end = position
            while end < len(tokens) and depth:
                if tokens[end].kind == "(":
                    depth += 1
                elif tokens[end].kind == ")":
                    depth -= 1
                end += 1
            if depth:
                raise TemplateError(f"template: :{line}: unclosed left paren")
            base = self._parse_pipeline(tokens[position : end - 1], line)
            position = end
        elif token.kind in ("field", "dot", "variable", "literal", "nil", "identifier"):
            base = token
        elif token.kind == "keyword":
            raise TemplateError(f"template: :{line}: unexpected <{token.value}> in command")
        else:
            raise TemplateError(f"template: :{line}: unexpected {token.value!r} in operand")
        fields = []
        chainable = token.kind in ("field", "variable", "(")
        first = position
        while (chainable and position < len(tokens) and tokens[position].kind == "field"
               and tokens[position].adjacent):
            fields.append(tokens[position].value)
            position += 1
        if token.kind == "field":
            text = _tokens_text([token, *tokens[first:position]])
            # Go positions a multi-field chain (.A.B.C) at its second field.
            anchor = tokens[first] if fields else token
            return Chain(Token("dot", ".", line), [token.value, *fields], text, anchor.line,
                          anchor.column), position
        if fields or token.kind == "(":
            text = _tokens_text(tokens[begin:position])
            return Chain(base, fields, text, token.line, token.column), position
        return base, position

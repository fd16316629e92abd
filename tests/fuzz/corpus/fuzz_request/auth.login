’
	wang.fangcorrect horse